"""The live page at / in a real Chromium against a real server process (uvicorn).

One journey, as a player lives it: the board from seeded data, sign in, complete a quest,
another player's score changing elsewhere, the server going away and coming back, an expired
access token, sign out. The server pings every second, so a page that did not answer PONG
would be dropped (and counted as a new connection) within the test. A second one picks other
boards (issue 13): the picker, another board's top 10 over the socket, and "around me".
"""

from __future__ import annotations

import os
import re
import shutil
import uuid

import pytest
from django.db import connection

from leaderboard.tests.browser import ServerProcess, browser_missing, chromium, database_url_for, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,  # the server process needs the test database, which SQLite keeps in memory
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]
webdriver_wait = pytest.importorskip(
    "selenium.webdriver.support.wait", reason="needs selenium (requirements-dev.txt)"
)

PASSWORD = "correct-Horse-battery-9"
HEARTBEAT = 1  # seconds: WS_HEARTBEAT_INTERVAL of the server under test
# Screenshots go to the test's temporary folder (pytest's tmp_path), never the repository.

# Everything the test reads from the page, in one round trip.
READ_PAGE = """
const rows = Array.from(document.querySelectorAll("#board tr:not(.empty)"));
const state = document.getElementById("state");
return {
  rows: rows.map((row) => [row.cells[0].textContent, row.cells[1].textContent, row.cells[2].textContent]),
  mine: rows.filter((row) => row.classList.contains("me")).map((row) => row.cells[1].textContent),
  state: state.textContent,
  connections: Number(state.dataset.connections),
  players: document.getElementById("players").textContent,
  signedInAs: document.getElementById("player").hidden ? null : document.getElementById("me-name").textContent,
  myScore: document.getElementById("me-score").textContent,
  myRank: document.getElementById("me-rank").textContent,
  message: document.getElementById("message").textContent,
  sameDocument: window.sameDocument === true,
};
"""
# Record every row that lights up, however short the highlight.
WATCH_FLASHES = """
window.sameDocument = true;
window.flashes = [];
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.target.classList.contains("flash")) window.flashes.push(change.target.cells[1].textContent);
  }
}).observe(document.getElementById("board"), {attributes: true, attributeFilter: ["class"], subtree: true});
"""


def digits(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def competition_rank(scores: dict[str, int], name: str) -> int:
    return 1 + sum(1 for score in scores.values() if score > scores[name])


def expected_rows(scores: dict[str, int]) -> list[tuple[int, str, int]]:
    ordered = sorted(scores.items(), key=lambda item: -item[1])[:10]
    return [(competition_rank(scores, name), name, score) for name, score in ordered]


def my_rank_text(scores: dict[str, int], name: str) -> str:
    """What the page shows as the player's rank once it knows it: off the board, ">10"."""
    on_board = [row_name for _rank, row_name, _score in expected_rows(scores)]
    return f"#{competition_rank(scores, name)}" if name in on_board else ">10"


def shown_rows(page: dict) -> list[tuple[int, str, int]]:
    return [(int(rank), name, digits(score)) for rank, name, score in page["rows"]]


def serve() -> ServerProcess:
    """A server process on the test database (started)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DB_CONNECTION_STRING=database_url_for(connection.settings_dict["NAME"]),
        WS_HEARTBEAT_INTERVAL=str(HEARTBEAT),
        WS_ALLOWED_ORIGINS=f"http://127.0.0.1:{port}",
        ALLOWED_HOSTS="127.0.0.1",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    process = ServerProcess(port=port, env=env)
    process.start()
    return process


@pytest.fixture
def server(transactional_db, action_types):
    process = serve()
    yield process
    process.stop()


@pytest.fixture
def boards_server(transactional_db, action_types, django_db_blocker):
    """A server that knows two boards besides the global one from its first request."""
    from leaderboard.boards import boards_forget
    from leaderboard.models import Board

    with django_db_blocker.unblock():
        Board.objects.create(code="wins", title="Wins this week", window="weekly", action_types=["match_win"])
        Board.objects.create(code="quests", title="Quests today", window="daily", action_types=["quest"])
    boards_forget()
    process = serve()
    yield process
    process.stop()
    boards_forget()


@pytest.fixture
def browser():
    driver = chromium(width=1000, height=1100)
    yield driver
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


def page_watch(browser, server, script: str):
    """`page()` reads the page's state with `script`; `wait_for(predicate, what)` waits until
    the predicate holds on it, or fails with the page, the browser console and the server log."""

    def page() -> dict:
        return browser.execute_script(script)

    def wait_for(predicate, what: str, timeout: float = 15):
        try:
            return webdriver_wait.WebDriverWait(browser, timeout, poll_frequency=0.05).until(
                lambda _driver: predicate(page())
            )
        except Exception:
            console = "\n".join(str(entry) for entry in browser.get_log("browser"))
            pytest.fail(
                f"{what}: not seen within {timeout} s\npage: {page()}\nconsole:\n{console}\n"
                f"server:\n{server.output()}"
            )

    return page, wait_for


def test_the_live_page_follows_the_board_through_a_session_and_a_server_restart(
    server, browser, make_user, login, tmp_path
):
    from scores.services import score_submit_sync
    from scores.validation import ScoreAction

    page, wait_for = page_watch(browser, server, READ_PAGE)

    def stored(field: str):
        return browser.execute_script(
            "const s = sessionStorage.getItem('scoreboard.session'); return s && JSON.parse(s)[arguments[0]];",
            field,
        )

    def credit(token: str, action_type: str, points: int) -> dict:
        action = {"action_id": str(uuid.uuid4()), "action_type": action_type, "points": points}
        status, body = server.request("POST", "/api/scores", action, token=token)
        assert status == 200, body
        return body

    # Given twelve players and the hero on the board, scored through the server's API.
    scores: dict[str, int] = {}
    tokens: dict[str, str] = {}
    for i in range(12):
        name, points = f"p{i + 1:02}", 950 - 60 * i  # 950, 890, ... 290
        tokens[name] = login(make_user(name, password=PASSWORD))["access"]
        scores[name] = credit(tokens[name], "level_up", points)["new_score"]
    hero = make_user("hero", password=PASSWORD)
    scores["hero"] = credit(login(hero)["access"], "level_up", 500)["new_score"]
    assert scores["hero"] == 500

    # When a visitor opens the page, then the top 10 and the player count are there, live.
    browser.get(server.url + "/")
    wait_for(lambda p: p["state"] == "live" and p["connections"] == 1, "the page going live")
    wait_for(lambda p: shown_rows(p) == expected_rows(scores), "the seeded top 10")
    wait_for(lambda p: p["players"] == "13", "the player count")
    assert page()["signedInAs"] is None
    browser.execute_script(WATCH_FLASHES)

    # When the hero signs in, then a socket of their own opens and their score waits for news.
    browser.find_element("id", "username").send_keys("hero")
    browser.find_element("id", "password").send_keys(PASSWORD)
    browser.find_element("id", "signin-button").click()
    wait_for(
        lambda p: p["signedInAs"] == "hero" and p["connections"] == 2 and p["state"] == "live", "signed in"
    )
    now = page()
    assert (now["myScore"], now["myRank"]) == ("—", "—")
    assert now["mine"] == ["hero"]
    assert not browser.find_element("id", "signin").is_displayed()
    assert stored("username") == "hero"

    # Three heartbeats later the socket is still the same one: the page answers PING.
    browser.execute_script("return new Promise((done) => setTimeout(done, arguments[0]))", 3500 * HEARTBEAT)
    assert page()["connections"] == 2, server.output()

    # When the hero completes a quest, then their score, rank and row move in place.
    rows_before = browser.find_elements("css selector", "#board tr")
    browser.find_element("id", "quest").click()
    done = wait_for(
        lambda p: re.search(r"Quest complete: \+(\d+) points", p["message"]), "the quest's answer"
    )
    scores["hero"] += int(done.group(1))
    wait_for(lambda p: digits(p["myScore"]) == scores["hero"], "the hero's own score (SCORE_UPDATE)")
    wait_for(lambda p: p["myRank"] == f"#{competition_rank(scores, 'hero')}", "the hero's own rank")
    wait_for(lambda p: shown_rows(p) == expected_rows(scores), "the board with the hero's new score")
    assert browser.execute_script("return arguments[0].every((row) => row.isConnected)", rows_before)
    assert "hero" in browser.execute_script("return window.flashes")
    assert page()["sameDocument"]

    # When another player scores elsewhere, then the page follows without a reload.
    hero_score_shown = page()["myScore"]
    scores["p10"] = credit(tokens["p10"], "match_win", 200)["new_score"]
    assert scores["p10"] == 610
    wait_for(lambda p: shown_rows(p) == expected_rows(scores), "p10 entering the top 10")
    assert "p10" in browser.execute_script("return window.flashes")
    now = page()
    assert now["sameDocument"] and now["myScore"] == hero_score_shown  # SCORE_UPDATE is not for others
    assert now["connections"] == 2
    # Overtaken players learn their new rank from the board, not from a SCORE_UPDATE.
    wait_for(lambda p: p["myRank"] == my_rank_text(scores, "hero"), "the hero's rank after p10 passed")

    # When the server dies and the board changes meanwhile, then the page says so, comes back
    # on its own and shows the board as it is now.
    server.kill()
    wait_for(lambda p: p["state"].startswith("reconnecting in"), "the reconnecting state")
    newcomer = make_user("newcomer", password=PASSWORD)
    score_submit_sync(
        user_id=newcomer.id,
        action=ScoreAction(action_id=str(uuid.uuid4()), action_type="level_up", points=1000),
    )
    scores["newcomer"] = 1000
    server.start()
    wait_for(lambda p: p["state"] == "live" and p["connections"] == 3, "the page reconnecting", timeout=40)
    wait_for(lambda p: shown_rows(p) == expected_rows(scores), "the current board after reconnecting")
    wait_for(lambda p: p["players"] == "14", "the new player count")
    assert "newcomer" in browser.execute_script("return window.flashes")
    now = page()
    assert now["sameDocument"] and now["signedInAs"] == "hero"
    assert now["myRank"] == my_rank_text(scores, "hero")

    browser.save_screenshot(str(tmp_path / "scoreboard-page.png"))
    browser.set_window_size(390, 900)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.save_screenshot(str(tmp_path / "scoreboard-page-narrow.png"))
    browser.set_window_size(1000, 1100)

    # When the tab becomes visible again during a long back-off, then the page reconnects at
    # once. (Jitter pinned to its top: the waits are 0.75, 1.5, 3, 6 s.)
    browser.execute_script("Math.random = () => 0.999;")
    server.kill()
    wait_for(
        lambda p: re.fullmatch(r"reconnecting in ([5-9]|\d\d+) s", p["state"]), "a long back-off", timeout=20
    )
    server.start()
    waiting = page()["state"]
    assert int(re.search(r"\d+", waiting).group()) >= 2, (
        f"the back-off ran out while the server started: {waiting}"
    )
    browser.execute_script("document.dispatchEvent(new Event('visibilitychange'))")
    wait_for(
        lambda p: p["state"] == "live" and p["connections"] == 4,
        "reconnecting on visibilitychange",
        timeout=1.5,
    )

    # When the access token no longer works, then the page refreshes the pair once and goes on.
    browser.execute_script(
        "const s = JSON.parse(sessionStorage.getItem('scoreboard.session'));"
        "s.access = 'expired.' + s.access.split('.')[1] + '.x';"
        "sessionStorage.setItem('scoreboard.session', JSON.stringify(s));"
    )
    browser.refresh()
    wait_for(lambda p: p["signedInAs"] == "hero" and p["state"] == "live", "signed in again after a refresh")
    assert not stored("access").startswith("expired.")
    browser.find_element("id", "quest").click()
    done = wait_for(lambda p: re.search(r"Quest complete: \+(\d+) points", p["message"]), "the second quest")
    scores["hero"] += int(done.group(1))
    wait_for(lambda p: digits(p["myScore"]) == scores["hero"], "the hero's score on the refreshed session")

    # When the hero signs out, then the page watches read-only and the tokens are gone.
    refresh_token = stored("refresh")
    browser.find_element("id", "signout").click()
    wait_for(lambda p: p["signedInAs"] is None and p["message"] == "Signed out.", "signed out")
    wait_for(lambda p: p["state"] == "live", "the read-only socket")
    assert browser.execute_script("return sessionStorage.getItem('scoreboard.session')") is None
    assert browser.find_element("id", "signin").is_displayed()
    status, _body = server.request("POST", "/api/auth/token/refresh", {"refresh": refresh_token})
    assert status == 401
    # Network errors are expected (the server was down); script errors are not.
    errors = [entry for entry in browser.get_log("browser") if entry.get("source") == "javascript"]
    assert not errors, errors


READ_BOARDS = """
const rows = Array.from(document.querySelectorAll("#board tr:not(.empty)"));
const picker = document.getElementById("board-picker");
const around = document.getElementById("around");
return {
  rows: rows.map((row) => [row.cells[0].textContent, row.cells[1].textContent, row.cells[2].textContent]),
  options: Array.from(picker.options, (option) => [option.value, option.textContent]),
  chosen: picker.value,
  boardName: document.getElementById("board-name").textContent,
  state: document.getElementById("state").textContent,
  connections: Number(document.getElementById("state").dataset.connections),
  signedInAs: document.getElementById("player").hidden ? null : document.getElementById("me-name").textContent,
  aroundShown: !document.getElementById("player").hidden && around.offsetParent !== null,
  aroundBoard: document.getElementById("around-board").textContent,
  aroundRank: document.getElementById("around-rank").textContent,
  aroundRows: Array.from(document.querySelectorAll("#around-list li"), (item) =>
    [item.querySelector(".name").textContent, item.classList.contains("me")]),
};
"""


def test_the_picker_shows_any_boards_top_ten_live_and_where_the_player_stands_on_it(
    boards_server, browser, make_user, login
):
    from selenium.webdriver.support.select import Select

    server = boards_server

    page, wait_for = page_watch(browser, server, READ_BOARDS)

    def credit(token: str, action_type: str, points: int) -> dict:
        action = {"action_id": str(uuid.uuid4()), "action_type": action_type, "points": points}
        status, body = server.request("POST", "/api/scores", action, token=token)
        assert status == 200, body
        return body

    # Given players whose wins and overall scores rank them differently.
    tokens: dict[str, str] = {}
    wins: dict[str, int] = {}
    overall: dict[str, int] = {}
    for i, name in enumerate(["ann", "ben", "cat", "dan", "eve"]):
        tokens[name] = login(make_user(name, password=PASSWORD))["access"]
        wins[name] = 200 - 30 * i  # 200, 170, 140, 110, 80
        credit(tokens[name], "match_win", wins[name])
        overall[name] = credit(tokens[name], "level_up", 100 + 150 * i)["new_score"]
    hero = make_user("hero", password=PASSWORD)
    tokens["hero"] = login(hero)["access"]
    wins["hero"] = 150
    credit(tokens["hero"], "match_win", 150)
    overall["hero"] = wins["hero"]

    # When a visitor opens the page, then the picker lists every enabled board, global first.
    browser.get(server.url + "/")
    wait_for(lambda p: p["state"] == "live", "the page going live")
    wait_for(lambda p: len(p["options"]) == 3, "the boards in the picker")
    assert page()["options"] == [
        ["global", "All time"],
        ["quests", "Quests today"],
        ["wins", "Wins this week"],
    ]
    assert page()["chosen"] == "global"
    wait_for(lambda p: shown_rows(p) == expected_rows(overall), "the global top 10 by default")

    # When the visitor picks "wins", then that board's top 10 shows, over the same socket.
    Select(browser.find_element("id", "board-picker")).select_by_value("wins")
    wait_for(lambda p: shown_rows(p) == expected_rows(wins), "the wins board's top 10")
    assert page()["boardName"] == "· Wins this week"
    assert page()["connections"] == 1

    # When a player wins a match elsewhere, then the wins board follows live.
    wins["eve"] += 120  # 200: shares first place with ann
    overall["eve"] += 120
    credit(tokens["eve"], "match_win", 120)
    wait_for(lambda p: shown_rows(p) == expected_rows(wins), "eve's win on the wins board")

    # When the hero signs in, then "around me" shows their rank on the chosen board.
    browser.find_element("id", "username").send_keys("hero")
    browser.find_element("id", "password").send_keys(PASSWORD)
    browser.find_element("id", "signin-button").click()
    wait_for(lambda p: p["signedInAs"] == "hero" and p["state"] == "live", "signed in")
    wait_for(lambda p: shown_rows(p) == expected_rows(wins), "the wins board on the player's socket")
    wanted = f"#{competition_rank(wins, 'hero')} of {len(wins)}"
    wait_for(lambda p: p["aroundRank"].startswith(wanted), f"around me: {wanted}")
    now = page()
    assert now["aroundShown"] and now["aroundBoard"] == "Wins this week"
    assert ["hero", True] in now["aroundRows"]

    # When the hero wins a match, then their SCORE_UPDATE refreshes where they stand.
    wins["hero"] += 60  # 210: first
    overall["hero"] += 60
    credit(tokens["hero"], "match_win", 60)
    wait_for(lambda p: p["aroundRank"].startswith(f"#1 of {len(wins)}"), "around me after the hero's win")
    wait_for(lambda p: shown_rows(p) == expected_rows(wins), "the hero on top of the wins board")

    # When the hero goes back to the global board, then both the table and "around me" follow.
    Select(browser.find_element("id", "board-picker")).select_by_value("global")
    wait_for(lambda p: shown_rows(p) == expected_rows(overall), "the global top 10 again")
    wanted = f"#{competition_rank(overall, 'hero')} of {len(overall)}"
    wait_for(lambda p: p["aroundRank"].startswith(wanted), f"around me on the global board: {wanted}")
    assert page()["aroundBoard"] == "All time" and page()["boardName"] == ""

    # A board nobody scored on yet says so.
    Select(browser.find_element("id", "board-picker")).select_by_value("quests")
    wait_for(lambda p: p["rows"] == [] and "Not on this board" in p["aroundRank"], "the empty quests board")
    errors = [entry for entry in browser.get_log("browser") if entry.get("source") == "javascript"]
    assert not errors, errors
