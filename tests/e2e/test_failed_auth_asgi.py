"""Failed-authentication limits and the admin lockout on a real uvicorn hub (the async middleware paths)."""

from __future__ import annotations

import re
import uuid

import requests
from django.contrib.auth.models import User

WRONG_KEY = "rly_AAAAAAAAAAAA_" + "A" * 38


def test_wrong_relay_keys_get_429_through_the_relay_stack(start_hub, e2e_relay):
    # An hour's window, so that no window boundary passes during the test.
    hub = start_hub(env={"RELAYHUB_FAILED_AUTH_RATE": "3/hour",
                         "RELAYHUB_CACHE_KEY_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}"})
    wrong = {"X-API-Key": WRONG_KEY}
    codes = [requests.post(f"{hub.url}/relay/heartbeat", headers=wrong, timeout=10).status_code
             for _ in range(3)]
    assert codes == [401, 401, 401]
    refused = requests.post(f"{hub.url}/relay/heartbeat", headers=wrong, timeout=10)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["success"] is False and "too many failed" in refused.json()["error"]
    right = requests.post(f"{hub.url}/relay/heartbeat", headers={"X-API-Key": e2e_relay.api_key}, timeout=10)
    assert right.status_code == 429


def test_the_admin_login_locks_out_under_asgi(hub):
    User.objects.create_superuser("boss", "b@example.com", "pw-lockout-123456")
    session = requests.Session()
    codes = []
    for _ in range(10):
        form = session.get(f"{hub.url}/admin/login/", timeout=10).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        answer = session.post(f"{hub.url}/admin/login/", timeout=10, allow_redirects=False,
                              data={"username": "boss", "password": "wrong", "csrfmiddlewaretoken": token},
                              headers={"Referer": f"{hub.url}/admin/login/"})
        codes.append(answer.status_code)
    assert codes == [200] * 9 + [429]
    assert answer.headers["Retry-After"] == "900" and "too many failed logins" in answer.json()["error"]
