"""Full output through django-storages' S3 backend, against moto's S3 server on 127.0.0.1.

Skipped unless boto3 and moto are installed (neither is a dependency: `pip install 'relayhub[s3]' 'moto[server]'`).
"""

from __future__ import annotations

import hashlib

import pytest

from tests.test_full_output import BODY, content, download, upload

WHY = "the S3 test needs boto3 and moto: pip install 'relayhub[s3]' 'moto[server]'"
pytest.importorskip("boto3", reason=WHY)
moto_server = pytest.importorskip("moto.server", reason=WHY)


@pytest.fixture
def s3_store(settings, monkeypatch):
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="relayhub")
    settings.RELAYHUB = {**settings.RELAYHUB, "KEEP_FULL_OUTPUT": True, "FULL_OUTPUT_MAX_BYTES": 100_000,
                         "OUTPUT_CAP_BYTES": 1000}
    settings.STORAGES = {**settings.STORAGES, "command_output": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "relayhub", "endpoint_url": endpoint, "location": "command-output",
                    "default_acl": "private", "file_overwrite": False}}}
    yield boto3.client("s3", endpoint_url=endpoint)
    server.stop()


def test_upload_and_download_through_s3(s3_store, relay, relay_client, make_command, admin_api,
                                        django_capture_on_commit_callbacks):
    from commands.models import Command
    from tests.test_relay_extensions import next_

    command = make_command()
    next_(relay_client, waitMs=0)
    command.refresh_from_db()

    assert upload(relay_client, command).status_code == 200

    [key] = [item["Key"] for item in s3_store.list_objects_v2(Bucket="relayhub")["Contents"]]
    assert key.startswith(f"command-output/commands/{command.pk}/")
    assert s3_store.get_object(Bucket="relayhub", Key=key)["Body"].read() == BODY
    response = download(admin_api, command)
    assert response["Content-Length"] == str(len(BODY))
    assert hashlib.sha256(content(response)).digest() == hashlib.sha256(BODY).digest()
    with django_capture_on_commit_callbacks(execute=True):
        Command.objects.filter(pk=command.pk).delete()
    assert "Contents" not in s3_store.list_objects_v2(Bucket="relayhub")
