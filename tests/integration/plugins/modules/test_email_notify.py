"""email_notify through ansible-playbook against a real SMTP server (aiosmtpd): STARTTLS, AUTH, delivery."""
from __future__ import annotations

import uuid

import pytest
from _itest_batch import run_batch
from trdrhub_harness.smtp import SmtpServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _args(smtp, **extra):
    return {"host": smtp.host, "port": smtp.port, "ca_path": smtp.ca_path, "username": smtp.username,
            "password": smtp.password, "sender": "TRDR Hub Status <status@trdrhub.example>", "timeout": 10,
            "subject": "Delayed document processing", "body": "Processing is delayed by up to 15 minutes.", **extra}


def test_email_notify_delivery_and_failures(ansible, smtp_server):
    smtp = smtp_server
    run_id = uuid.uuid4().hex[:8]
    to = f"ops-{run_id}@customer.example"
    bcc = f"cfo-{run_id}@customer.example"
    runs = run_batch(ansible, {
        "check": ("email_notify", _args(smtp, to=[to], incident_id="INC-EM-0"), {"check_mode": True}),
        "send": ("email_notify", _args(smtp, to=[to], cc=[f"cc-{run_id}@customer.example"], bcc=[bcc],
                                       incident_id="INC-EM-1", html="<p>Delayed</p>",
                                       reply_to="support@trdrhub.example")),
        "partly_refused": ("email_notify", _args(smtp, to=[to, "unknown@customer.example"], incident_id="INC-EM-2")),
        "all_refused": ("email_notify", _args(smtp, to=["unknown@customer.example"], incident_id="INC-EM-3")),
        "wrong_password": ("email_notify", _args(smtp, to=[to], password="not-the-password-" + run_id,
                                                 incident_id="INC-EM-4")),
        "untrusted_ca": ("email_notify", _args(smtp, to=[to], ca_path=None, incident_id="INC-EM-5")),
        "cleartext_password": ("email_notify", _args(smtp, to=[to], security="none")),
        "no_auth": ("email_notify", _args(smtp, to=[to], username=None, password=None)),
        "bad_security": ("email_notify", _args(smtp, to=[to], security="ssl")),
        "bad_address": ("email_notify", _args(smtp, to=["not an address"])),
    })

    check = runs["check"]
    assert not check.failed and check["changed"] is True and check["sent"] is False
    headers = check["message"]["headers"]
    assert headers["Subject"] == "[INC-EM-0] Delayed document processing"
    assert headers["X-TRDRHub-Incident"] == "INC-EM-0" and headers["To"] == to
    assert not any(m["message"]["X-TRDRHub-Incident"] == "INC-EM-0" for m in smtp.messages)

    send = runs["send"]
    assert not send.failed, send.output
    assert send["sent"] is True and send["refused"] == {}
    assert send["recipients"] == [to, f"cc-{run_id}@customer.example", bcc]
    [got] = [m for m in smtp.messages if m["message"]["X-TRDRHub-Incident"] == "INC-EM-1"]
    assert got["tls"] is True and got["login"] == smtp.username
    assert got["mail_from"] == "status@trdrhub.example" and sorted(got["rcpt_tos"]) == sorted(send["recipients"])
    message = got["message"]
    assert message["Subject"] == "[INC-EM-1] Delayed document processing" and message["Bcc"] is None
    assert message["Reply-To"] == "support@trdrhub.example" and message["Message-ID"] == send["message"]["message_id"]
    assert message.get_body(("plain",)).get_content().strip() == "Processing is delayed by up to 15 minutes."
    assert message.get_body(("html",)).get_content().strip() == "<p>Delayed</p>"

    partly = runs["partly_refused"]
    assert not partly.failed and list(partly["refused"]) == ["unknown@customer.example"]
    assert partly["refused"]["unknown@customer.example"].startswith("550 5.1.1")
    assert any("refused 1 of 2 recipients" in w for w in partly["warnings"])
    assert [m["rcpt_tos"] for m in smtp.messages if m["message"]["X-TRDRHub-Incident"] == "INC-EM-2"] == [[to]]

    refused = runs["all_refused"]
    assert refused.failed and "refused every recipient, nothing was sent: unknown@customer.example: 550" in refused["msg"]

    wrong = runs["wrong_password"]
    assert wrong.failed
    assert wrong["msg"] == (f"SMTP server {smtp.host}:{smtp.port} refused the login of {smtp.username}: "
                            "535 5.7.8 Authentication credentials invalid - check username and password")
    assert "not-the-password-" + run_id not in wrong.output
    untrusted = runs["untrusted_ca"]
    assert untrusted.failed and "certificate verify failed" in untrusted["msg"] and "ca_path" in untrusted["msg"]
    assert runs["cleartext_password"].failed and "without TLS" in runs["cleartext_password"]["msg"]
    assert runs["no_auth"].failed and "530" in runs["no_auth"]["msg"] and "Authentication required" in runs["no_auth"]["msg"]
    assert runs["bad_security"].failed and "starttls, tls, none" in runs["bad_security"]["msg"]
    assert runs["bad_address"].failed and "not an email address" in runs["bad_address"]["msg"]
    assert not any(m["message"]["X-TRDRHub-Incident"] in ("INC-EM-3", "INC-EM-4", "INC-EM-5") for m in smtp.messages)
    assert smtp.password not in send.output


def test_email_notify_implicit_tls(ansible):
    with SmtpServer(implicit_tls=True) as smtp:
        smtp.start()
        runs = run_batch(ansible, {
            "tls": ("email_notify", _args(smtp, security="tls", to=["ops@customer.example"], incident_id="INC-EM-TLS")),
            "starttls_on_tls_port": ("email_notify", _args(smtp, to=["ops@customer.example"], timeout=3)),
        })
        assert not runs["tls"].failed, runs["tls"].output
        assert [m["message"]["X-TRDRHub-Incident"] for m in smtp.messages] == ["INC-EM-TLS"]
        assert smtp.messages[0]["tls"] is True
        wrong = runs["starttls_on_tls_port"]
        assert wrong.failed and "is security=starttls right for port" in wrong["msg"], wrong["msg"]
