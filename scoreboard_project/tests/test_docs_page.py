"""/api/docs/ (Swagger UI) works offline: every script, style sheet and icon it loads is
served by the application itself (drf-spectacular-sidecar), as `make run` and the Docker
image serve it: through the production ASGI application."""

import re

import pytest

pytestmark = pytest.mark.django_db

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def test_the_docs_page_loads_only_local_files_and_each_answers(asgi):
    page = asgi("GET", "/api/docs/", headers={"accept": "text/html"})
    assert page.status_code == 200 and page["content-type"].startswith("text/html")
    html = page.content.decode()
    # No absolute or protocol-relative address (the page also carries a random token, in
    # which a plain search for "cdn" failed once).
    assets = ASSET.findall(html)
    assert "://" not in html and not any(asset.startswith("//") for asset in assets), "another host"
    assert {asset.rsplit("/", 1)[-1] for asset in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
    for asset in assets:
        assert asset.startswith("/static/"), asset
        response = asgi("GET", asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset
    assert 'url: "/api/schema/"' in html
    assert asgi("GET", "/api/schema/").status_code == 200


def test_a_missing_static_file_is_a_json_404(asgi):
    response = asgi("GET", "/static/drf_spectacular_sidecar/swagger-ui-dist/nothing.js")
    assert response.status_code == 404 and response.json()["error_code"] == "NOT_FOUND"
