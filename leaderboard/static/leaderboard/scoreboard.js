// The live scoreboard page: the top 10 from WebSocket /ws/scoreboard (API.md section 3),
// the player count from GET /api/scoreboard, and a small player panel (sign in, quest, sign out).
// A picker (GET /api/boards) shows another board's top 10 over the same socket (SUBSCRIBE), and
// a signed-in player sees where they stand on it (GET /api/boards/{code}/around-me).
"use strict";

(() => {
  const SESSION_KEY = "scoreboard.session";
  const RETRY_BASE_MS = 500;
  const RETRY_CAP_MS = 30000;
  // After 4429 (too many connections) the server is asking everyone to back off.
  const BUSY_BASE_MS = 5000;
  const BUSY_CAP_MS = 120000;
  const COUNT_EVERY_MS = 5000;
  const FLASH_MS = 1500;
  const WATCH_EVERY_MS = 5000;
  const GLOBAL = "global";
  const AROUND_RADIUS = 2;
  const AROUND_EVERY_MS = 5000;
  // The page pings after this much silence and gives the socket up after SILENCE_LIMIT_MS,
  // whatever WS_HEARTBEAT_INTERVAL the server runs with.
  const QUIET_MS = 25000;
  const SILENCE_LIMIT_MS = 60000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    players: $("players"),
    state: $("state"),
    board: $("board"),
    signin: $("signin"),
    username: $("username"),
    password: $("password"),
    signinButton: $("signin-button"),
    player: $("player"),
    meName: $("me-name"),
    meScore: $("me-score"),
    meRank: $("me-rank"),
    quest: $("quest"),
    signout: $("signout"),
    message: $("message"),
    picker: $("board-picker"),
    boardName: $("board-name"),
    aroundBoard: $("around-board"),
    aroundRank: $("around-rank"),
    aroundList: $("around-list"),
  };
  const numbers = new Intl.NumberFormat();

  let session = loadSession(); // {username, userId, access, refresh} or null
  let socket = null;
  let generation = 0; // bumped by every connect(); older async work sees it and stops
  let phase = "idle"; // idle | ticket | socket | waiting | offline
  let live = false; // the current socket has delivered its opening snapshot
  let attempt = 0;
  let connections = 0; // sockets that delivered their snapshot since the page loaded
  let busy = false;
  let anonymousOnly = false; // this user's socket was refused (4403): watch read-only
  let retryTimer = null;
  let retryAt = 0;
  let countdownTimer = null;
  let watchTimer = null;
  let lastHeard = 0;
  let seqs = {};
  let rows = []; // one <tr> per board position, reused across updates
  let shown = []; // the entries on display
  let countTimer = null;
  let lastCountAt = 0;
  let refreshing = null;
  let mineKnown = false; // a SCORE_UPDATE arrived for the signed-in player
  let pendingAction = null; // a quest whose answer never arrived: resent with the same action_id
  let titles = { [GLOBAL]: "All time" }; // board code -> title, from GET /api/boards
  let chosen = GLOBAL; // the board the table shows
  let shownBoard = GLOBAL; // the board whose entries are on display
  let subscribing = null; // the board of a SUBSCRIBE not answered yet on this socket
  let aroundGeneration = 0; // bumped by every around-me read; older answers are dropped
  let aroundTimer = null;
  let lastAroundAt = 0;
  const flashTimers = new WeakMap();

  // ---- small helpers ------------------------------------------------------------------

  function setText(node, value) {
    const text = String(value);
    if (node.textContent !== text) node.textContent = text;
  }

  function say(text, isError = false) {
    ui.message.classList.toggle("error", isError);
    setText(ui.message, text);
  }

  function format(value) {
    return typeof value === "number" ? numbers.format(value) : String(value ?? "—");
  }

  function randomInt(low, high) {
    const [value] = crypto.getRandomValues(new Uint32Array(1));
    return low + (value % (high - low + 1));
  }

  function uuid4() {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function userIdFromToken(token) {
    // For display only (marking the player's own row); the server checks the signature.
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const claims = JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
      return typeof claims.user_id === "number" ? claims.user_id : Number(claims.user_id) || null;
    } catch {
      return null;
    }
  }

  // ---- session ------------------------------------------------------------------------

  function loadSession() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY));
      return stored && stored.access && stored.refresh ? stored : null;
    } catch {
      return null;
    }
  }

  function saveSession(value) {
    session = value;
    try {
      if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
      else sessionStorage.removeItem(SESSION_KEY);
    } catch {
      // Storage can be unavailable (private modes); the session then lives as long as the page.
    }
  }

  // ---- HTTP ---------------------------------------------------------------------------

  function postJson(url, body, access) {
    const headers = { Accept: "application/json" };
    if (body !== null) headers["Content-Type"] = "application/json";
    if (access) headers.Authorization = `Bearer ${access}`;
    return fetch(url, {
      method: "POST",
      headers,
      body: body === null ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  function describeError(response, body) {
    if (body && typeof body === "object" && body.error_code) {
      let text = body.message || body.error_code;
      if (body.details && typeof body.details === "object") {
        const parts = Object.entries(body.details).map(([field, why]) => `${field}: ${why}`);
        if (parts.length) text += ` (${parts.join("; ")})`;
      }
      if (body.retry_after) text += ` Try again in ${body.retry_after} s.`;
      return text;
    }
    return `The server answered HTTP ${response.status}.`;
  }

  // true: a new pair is stored; false: the server refused the refresh token; null: unreachable.
  function refreshSession() {
    if (!refreshing) refreshing = renewTokens().finally(() => (refreshing = null));
    return refreshing;
  }

  async function renewTokens() {
    const current = session;
    if (!current) return false;
    let response;
    try {
      response = await postJson("/api/auth/token/refresh", { refresh: current.refresh });
    } catch {
      return null;
    }
    if (response.status >= 500) return null;
    const body = await readJson(response);
    if (!response.ok || !body || !body.access || !body.refresh) return false;
    if (session !== current) return session !== null;
    saveSession({ ...current, access: body.access, refresh: body.refresh });
    return true;
  }

  function getJson(url, access) {
    const headers = { Accept: "application/json" };
    if (access) headers.Authorization = `Bearer ${access}`;
    return fetch(url, { headers, credentials: "omit", cache: "no-store" });
  }

  // Send with the access token; on 401 refresh the pair once and retry, else sign out.
  async function authed(send) {
    const current = session;
    if (!current) return null;
    const response = await send(current.access);
    if (response.status !== 401) return response;
    if (session && session.access !== current.access) {
      return retryOrEnd(await send(session.access));
    }
    const renewed = await refreshSession();
    if (renewed === true && session) return retryOrEnd(await send(session.access));
    if (renewed === false) endSession("Your session expired; please sign in again.");
    return response;
  }

  function authedPost(url, body) {
    return authed((access) => postJson(url, body, access));
  }

  function authedGet(url) {
    return authed((access) => getJson(url, access));
  }

  function retryOrEnd(response) {
    if (response.status === 401) endSession("Your session expired; please sign in again.");
    return response;
  }

  // ---- the board ----------------------------------------------------------------------

  function sameEntry(a, b) {
    return a && b && a.user_id === b.user_id && a.score === b.score && a.rank === b.rank && a.username === b.username;
  }

  function differingPositions(entries) {
    const positions = [];
    for (let i = 0; i < Math.max(entries.length, shown.length); i += 1) {
      if (i < entries.length && !sameEntry(entries[i], shown[i])) positions.push(i + 1);
    }
    return positions;
  }

  function newRow() {
    const row = document.createElement("tr");
    for (const name of ["rank num", "name", "score num"]) {
      const cell = document.createElement("td");
      cell.className = name;
      row.appendChild(cell);
    }
    return row;
  }

  function showEmpty(text) {
    const row = document.createElement("tr");
    const cell = document.createElement("td");
    row.className = "empty";
    cell.colSpan = 3;
    cell.textContent = text;
    row.appendChild(cell);
    ui.board.replaceChildren(row);
    rows = [];
  }

  function flash(row) {
    row.classList.remove("flash");
    void row.offsetWidth; // restart the highlight when the row changes again at once
    row.classList.add("flash");
    clearTimeout(flashTimers.get(row));
    flashTimers.set(row, setTimeout(() => row.classList.remove("flash"), FLASH_MS));
  }

  function markMine(row) {
    const mine = session !== null && session.userId != null && Number(row.dataset.userId) === session.userId;
    row.classList.toggle("me", mine);
  }

  // Update the rows in place; highlight the given 1-based positions.
  function renderBoard(entries, changed) {
    if (!entries.length) {
      if (shown.length || !rows.length) showEmpty("No scores yet.");
      shown = [];
      return;
    }
    if (!rows.length) ui.board.replaceChildren();
    while (rows.length < entries.length) {
      const row = newRow();
      ui.board.appendChild(row);
      rows.push(row);
    }
    while (rows.length > entries.length) rows.pop().remove();
    entries.forEach((entry, i) => {
      const row = rows[i];
      const [rank, name, score] = row.cells;
      setText(rank, entry.rank);
      setText(name, entry.username);
      if (name.title !== String(entry.username)) name.title = String(entry.username);
      setText(score, format(entry.score));
      row.dataset.userId = String(entry.user_id);
      markMine(row);
    });
    for (const position of new Set(changed)) {
      if (Number.isInteger(position) && position >= 1 && position <= rows.length) flash(rows[position - 1]);
    }
    shown = entries.map((entry) => ({ ...entry }));
  }

  // Show a board's entries; those of another board than the one on display replace it quietly.
  function showBoard(board, entries, changed) {
    if (board !== shownBoard) {
      shown = [];
      shownBoard = board;
      if (entries.length) renderBoard(entries, []);
      else showEmpty("No scores on this board yet.");
    } else {
      renderBoard(entries, changed);
    }
  }

  function onBoard(data) {
    const entries = Array.isArray(data.leaderboard) ? data.leaderboard : [];
    // Global broadcasts name no board; other boards' updates and SUBSCRIBE answers do.
    const board = typeof data.board === "string" ? data.board : GLOBAL;
    const snapshot = !live || board === subscribing;
    if (board === subscribing) subscribing = null;
    if (board === GLOBAL) followMine(entries); // the player's rank is their global one
    if (board === chosen) {
      const local = board === shownBoard ? differingPositions(entries) : [];
      // A snapshot's changed_ranks speak of the server's last broadcast, not of what this page
      // shows, so compare with the page (nothing lights up on the first paint).
      const changed = snapshot
        ? shown.length ? local : []
        : (Array.isArray(data.changed_ranks) ? data.changed_ranks : []).concat(local);
      showBoard(board, entries, changed);
      if (!snapshot) aroundSoon(); // the board moved: where the player stands may have too
    }
    if (!live) {
      live = true;
      connections += 1;
      ui.state.dataset.connections = String(connections);
      attempt = 0;
      busy = false;
      setState("live");
      countNow();
      if (chosen !== GLOBAL) subscribe(chosen);
    } else if (board === GLOBAL) {
      countSoon();
    }
  }

  function subscribe(code) {
    if (!socket || !live) return; // the next socket subscribes once it is live
    subscribing = code;
    send(socket, { type: "SUBSCRIBE", board: code });
  }

  function onSocketError(data) {
    // The chosen board went away (disabled meanwhile): back to the global board.
    if (subscribing !== null && data.error_code === "NOT_FOUND") {
      subscribing = null;
      say(`That board is no longer available; showing ${titles[GLOBAL]}.`, true);
      choose(GLOBAL);
      fetchBoards();
    }
  }

  // The player count is not in the socket's messages: read it from GET /api/scoreboard, at
  // once on (re)connect and at most every COUNT_EVERY_MS while the board moves.
  async function fetchBoard() {
    lastCountAt = Date.now();
    let body;
    try {
      const response = await fetch("/api/scoreboard", { cache: "no-store", credentials: "omit" });
      if (!response.ok) return;
      body = await response.json();
    } catch {
      return;
    }
    if (typeof body.total_players === "number") setText(ui.players, format(body.total_players));
    // Without a live socket this is the freshest board the page can get.
    if (!live && Array.isArray(body.leaderboard)) {
      followMine(body.leaderboard);
      if (chosen === GLOBAL) {
        showBoard(GLOBAL, body.leaderboard, shown.length ? differingPositions(body.leaderboard) : []);
      }
    }
    if (!live && chosen !== GLOBAL) fetchChosen();
  }

  // The chosen board's top 10 over HTTP, while the socket cannot bring it.
  async function fetchChosen() {
    const board = chosen;
    let body;
    try {
      const response = await getJson(`/api/boards/${encodeURIComponent(board)}`);
      if (!response.ok) return;
      body = await response.json();
    } catch {
      return;
    }
    if (live || board !== chosen || !Array.isArray(body.leaderboard)) return;
    const local = board === shownBoard && shown.length ? differingPositions(body.leaderboard) : [];
    showBoard(board, body.leaderboard, local);
  }

  // ---- the board picker -----------------------------------------------------------------

  async function fetchBoards() {
    let body;
    try {
      const response = await getJson("/api/boards");
      if (!response.ok) return;
      body = await response.json();
    } catch {
      return;
    }
    const boards = Array.isArray(body.boards) ? body.boards.filter((b) => b && typeof b.code === "string") : [];
    if (!boards.some((b) => b.code === GLOBAL)) boards.push({ code: GLOBAL, title: titles[GLOBAL] });
    boards.sort((a, b) => (a.code === GLOBAL ? -1 : b.code === GLOBAL ? 1 : a.code.localeCompare(b.code)));
    titles = Object.fromEntries(boards.map((b) => [b.code, String(b.title || b.code)]));
    const options = boards.map((b) => {
      const option = document.createElement("option");
      option.value = b.code;
      option.textContent = titles[b.code];
      return option;
    });
    ui.picker.replaceChildren(...options);
    if (!(chosen in titles)) choose(GLOBAL);
    ui.picker.value = chosen;
    renderChosen();
  }

  function renderChosen() {
    const title = titles[chosen] || chosen;
    setText(ui.boardName, chosen === GLOBAL ? "" : `· ${title}`);
    setText(ui.aroundBoard, title);
  }

  // Show another board: its snapshot comes over the socket (or over HTTP while it is down).
  function choose(code) {
    if (code === chosen) return;
    chosen = code;
    if (ui.picker.value !== code) ui.picker.value = code;
    renderChosen();
    if (live) subscribe(code);
    else fetchChosen();
    aroundNow();
  }

  function countNow() {
    clearTimeout(countTimer);
    countTimer = null;
    fetchBoard();
  }

  function countSoon() {
    if (countTimer) return;
    const wait = Math.max(0, lastCountAt + COUNT_EVERY_MS - Date.now());
    countTimer = setTimeout(() => {
      countTimer = null;
      fetchBoard();
    }, wait);
  }

  // ---- the player's panel ---------------------------------------------------------------

  function resetMine() {
    mineKnown = false;
    setText(ui.meScore, "—");
    setText(ui.meRank, "—");
  }

  function renderAccount() {
    const signedIn = session !== null;
    ui.signin.hidden = signedIn;
    ui.player.hidden = !signedIn;
    ui.quest.disabled = !signedIn;
    ui.signout.disabled = !signedIn;
    setText(ui.meName, signedIn ? session.username : "");
    rows.forEach(markMine);
  }

  function showMine(score, rank) {
    if (typeof score === "number") setText(ui.meScore, format(score));
    setText(ui.meRank, rank == null ? "—" : `#${rank}`);
  }

  function onScore(data) {
    if (!session) return;
    mineKnown = true;
    showMine(data.new_score, data.rank);
    aroundNow();
  }

  // Where the player stands on the chosen board: GET /api/boards/{code}/around-me.
  async function fetchAround() {
    clearTimeout(aroundTimer);
    aroundTimer = null;
    lastAroundAt = Date.now();
    const mine = ++aroundGeneration;
    const board = chosen;
    if (!session) return;
    let body = null;
    let response;
    try {
      response = await authedGet(`/api/boards/${encodeURIComponent(board)}/around-me?radius=${AROUND_RADIUS}`);
      if (response) body = await readJson(response);
    } catch {
      response = null;
    }
    if (mine !== aroundGeneration || board !== chosen || !session) return; // asked again meanwhile
    if (!response || !response.ok || !body) {
      if (response) setText(ui.aroundRank, describeError(response, body));
      return;
    }
    renderAround(body);
  }

  function renderAround(body) {
    const player = body.player && typeof body.player === "object" ? body.player : null;
    const total = typeof body.total_players === "number" ? body.total_players : null;
    if (player) {
      const of = total === null ? "" : ` of ${format(total)}`;
      setText(ui.aroundRank, `#${player.rank}${of} · ${format(player.score)} points`);
    } else {
      setText(ui.aroundRank, "Not on this board yet.");
    }
    const entries = Array.isArray(body.leaderboard) ? body.leaderboard : [];
    const items = entries.map((entry) => {
      const item = document.createElement("li");
      const rank = document.createElement("span");
      const name = document.createElement("span");
      const score = document.createElement("span");
      rank.className = "rank";
      name.className = "name";
      score.className = "score";
      rank.textContent = `#${entry.rank}`;
      name.textContent = String(entry.username);
      name.title = String(entry.username);
      score.textContent = format(entry.score);
      item.append(rank, name, score);
      item.classList.toggle("me", player !== null && entry.user_id === player.user_id);
      return item;
    });
    ui.aroundList.replaceChildren(...items);
  }

  function resetAround() {
    aroundGeneration += 1;
    clearTimeout(aroundTimer);
    aroundTimer = null;
    setText(ui.aroundRank, "—");
    ui.aroundList.replaceChildren();
  }

  function aroundNow() {
    if (!session) return;
    fetchAround();
  }

  // The chosen board moved: read around-me again, at most every AROUND_EVERY_MS.
  function aroundSoon() {
    if (!session || aroundTimer) return;
    const wait = Math.max(0, lastAroundAt + AROUND_EVERY_MS - Date.now());
    aroundTimer = setTimeout(fetchAround, wait);
  }

  // SCORE_UPDATE comes only when the player's own score moves; others overtaking them show
  // on the board, so once the player's numbers are known the board keeps them current.
  function followMine(entries) {
    if (!session || !mineKnown || session.userId == null) return;
    const entry = entries.find((e) => e.user_id === session.userId);
    if (entry) {
      showMine(entry.score, entry.rank);
    } else if (entries.length >= 10) {
      const shownRank = Number(ui.meRank.textContent.replace("#", ""));
      const last = entries[entries.length - 1].rank;
      if (shownRank && shownRank <= last) setText(ui.meRank, `>${last}`);
    }
  }

  // Forget the tokens and watch read-only from now on.
  function endSession(message) {
    const hadSession = session !== null;
    saveSession(null);
    pendingAction = null;
    resetMine();
    resetAround();
    renderAccount();
    if (message) say(message, false);
    if (hadSession) {
      anonymousOnly = false;
      connect();
    }
  }

  async function signIn(event) {
    event.preventDefault();
    const username = ui.username.value.trim();
    const password = ui.password.value;
    if (!username || !password) {
      say("Enter your username and password.", true);
      return;
    }
    ui.signinButton.disabled = true;
    try {
      const response = await postJson("/api/auth/token", { username, password });
      const body = await readJson(response);
      if (!response.ok || !body || !body.access || !body.refresh) {
        say(describeError(response, body), true);
        return;
      }
      saveSession({ username, userId: userIdFromToken(body.access), access: body.access, refresh: body.refresh });
      ui.password.value = "";
      resetMine();
      resetAround();
      renderAccount();
      aroundNow();
      say(`Signed in as ${username}.`);
      anonymousOnly = false;
      attempt = 0;
      connect(); // a socket bound to this player, for SCORE_UPDATE
    } catch {
      say("Could not reach the server; try again.", true);
    } finally {
      ui.signinButton.disabled = false;
    }
  }

  async function completeQuest() {
    if (!session) return;
    ui.quest.disabled = true;
    const action = pendingAction || { action_id: uuid4(), action_type: "quest", points: randomInt(1, 100) };
    pendingAction = action;
    try {
      const response = await authedPost("/api/scores", action);
      if (!response) return;
      const body = await readJson(response);
      if (response.status >= 500) {
        say(`${describeError(response, body)} Press again to retry.`, true);
        return;
      }
      pendingAction = null;
      if (!session) return; // signed out while trying: endSession said why
      if (response.status === 202) say(`Quest of ${action.points} points held for review.`);
      else if (response.ok && body && body.success) say(`Quest complete: +${action.points} points.`);
      else say(describeError(response, body), true);
      countSoon();
    } catch {
      say("Could not reach the server; press again to retry.", true);
    } finally {
      ui.quest.disabled = session === null;
    }
  }

  async function signOut() {
    ui.signout.disabled = true;
    try {
      await authedPost("/api/auth/logout", null);
    } catch {
      // Unreachable server: the tokens are forgotten here all the same.
    }
    endSession("Signed out.");
  }

  // ---- the socket -----------------------------------------------------------------------

  function setState(state, text = state) {
    ui.state.dataset.state = state;
    setText(ui.state, text);
  }

  function clearRetry() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    retryTimer = null;
    countdownTimer = null;
  }

  function dropSocket() {
    clearInterval(watchTimer);
    watchTimer = null;
    const old = socket;
    socket = null;
    live = false;
    if (old) {
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try {
        old.close(1000);
      } catch {
        // Already closed.
      }
    }
  }

  async function fetchTicket() {
    if (session && !anonymousOnly) {
      const response = await authedPost("/api/auth/ws-ticket", null);
      if (response && response.ok) return (await response.json()).ticket;
      if (response && response.status !== 401) throw new Error(`ws-ticket: HTTP ${response.status}`);
      // 401 after a failed refresh: signed out by now; watch read-only.
    }
    const response = await postJson("/api/auth/ws-ticket", null);
    if (!response.ok) throw new Error(`ws-ticket: HTTP ${response.status}`);
    return (await response.json()).ticket;
  }

  async function connect() {
    clearRetry();
    dropSocket();
    const mine = ++generation;
    if (navigator.onLine === false) {
      phase = "offline";
      setState("offline");
      return;
    }
    phase = "ticket";
    setState("connecting", "connecting…");
    let ticket;
    try {
      ticket = await fetchTicket();
    } catch {
      if (mine === generation) scheduleReconnect();
      return;
    }
    if (mine !== generation) return;
    phase = "socket";
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/scoreboard?ticket=${encodeURIComponent(ticket)}`);
    socket = ws;
    seqs = {};
    lastHeard = Date.now();
    ws.onmessage = (event) => onMessage(ws, event.data);
    ws.onclose = (event) => onClose(ws, event);
    subscribing = null;
    watchTimer = setInterval(() => watch(ws), WATCH_EVERY_MS);
  }

  function send(ws, message) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  function watch(ws) {
    if (ws !== socket || ws.readyState !== WebSocket.OPEN) return;
    const silent = Date.now() - lastHeard;
    if (silent > SILENCE_LIMIT_MS) {
      // A half-open connection (a laptop that slept, a dropped NAT entry) never fires close.
      dropSocket();
      scheduleReconnect();
    } else if (silent > QUIET_MS) {
      send(ws, { type: "PING" });
    }
  }

  function onMessage(ws, raw) {
    if (ws !== socket) return;
    lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    const { type } = message;
    if (typeof message.seq === "number") {
      if (message.seq <= (seqs[type] ?? -Infinity)) return; // a duplicate or late copy
      seqs[type] = message.seq;
    }
    const data = message.data && typeof message.data === "object" ? message.data : {};
    if (type === "PING") send(ws, { type: "PONG" });
    else if (type === "LEADERBOARD_UPDATE") onBoard(data);
    else if (type === "SCORE_UPDATE") onScore(data);
    else if (type === "ERROR") {
      console.warn("scoreboard socket:", data.error_code, data.message);
      onSocketError(data);
    }
  }

  function onClose(ws, event) {
    if (ws !== socket) return;
    dropSocket();
    if (event.code === 4401 && session) {
      endSession("Your session ended; you are signed out."); // reconnects read-only
      return;
    }
    if (event.code === 4403 && session) {
      anonymousOnly = true;
      say("Live updates for this account were refused; showing the public board.", true);
    }
    busy = event.code === 4429;
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearRetry();
    if (navigator.onLine === false) {
      phase = "offline";
      setState("offline");
      return;
    }
    const base = busy ? BUSY_BASE_MS : RETRY_BASE_MS;
    const cap = busy ? BUSY_CAP_MS : RETRY_CAP_MS;
    const delay = Math.min(cap, base * 2 ** attempt) * (0.5 + Math.random()); // ±50 % jitter
    attempt = Math.min(attempt + 1, 20);
    retryAt = Date.now() + delay;
    phase = "waiting";
    retryTimer = setTimeout(connect, delay);
    const why = busy ? " (server busy)" : "";
    const tick = () =>
      setState("reconnecting", `reconnecting in ${Math.max(1, Math.ceil((retryAt - Date.now()) / 1000))} s${why}`);
    tick();
    countdownTimer = setInterval(tick, 1000);
    countSoon(); // keeps the board fresh over HTTP while the socket is down
  }

  // Reconnect now rather than at the end of the back-off (the tab is back, the network is back).
  function wake() {
    const closed = !socket || socket.readyState === WebSocket.CLOSING || socket.readyState === WebSocket.CLOSED;
    if (phase === "waiting" || phase === "offline" || (phase === "socket" && closed)) connect();
  }

  // ---- start ----------------------------------------------------------------------------

  ui.signin.addEventListener("submit", signIn);
  ui.quest.addEventListener("click", completeQuest);
  ui.signout.addEventListener("click", signOut);
  ui.picker.addEventListener("change", () => choose(ui.picker.value));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") wake();
  });
  window.addEventListener("online", wake);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) wake(); // back from the back/forward cache, whose sockets were closed
  });
  window.addEventListener("offline", () => {
    if (!live) {
      clearRetry();
      phase = "offline";
      setState("offline");
    }
  });

  renderAccount();
  renderChosen();
  fetchBoards();
  fetchBoard();
  connect();
  aroundNow();
})();
