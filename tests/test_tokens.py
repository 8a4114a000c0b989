"""The dashboard's secrets as pure functions: the hand-written HS256 JWT, its signing key in
data_dir, scrypt password hashes, and the failure counters of the throttles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path

import orjson
import pytest

from relay import passwords, tokens
from relay.throttle import Failures

SECRET = b"k" * 32
NOW = 1_700_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], claims: dict[str, object], key: bytes = SECRET) -> str:
    """A token signed with HMAC-SHA256 whatever its header says."""
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def claims(**extra: object) -> dict[str, object]:
    return {"sub": "alice", "iat": int(NOW), "exp": int(NOW) + 3600, **extra}


def test_a_token_round_trips_and_is_a_standard_hs256_jwt():
    token = tokens.issue("alice", now=NOW, lifetime_s=3600, secret=SECRET, sid=7)
    head, body, sig = token.split(".")
    assert orjson.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "HS256", "typ": "JWT"}
    expected = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=") == expected
    assert "=" not in token
    got = tokens.decode(token, SECRET, now=NOW + 10)
    assert got == {"sub": "alice", "iat": int(NOW), "exp": int(NOW) + 3600, "sid": 7}


def test_a_lifetime_is_capped_at_a_day():
    token = tokens.issue("alice", now=NOW, lifetime_s=7 * 86400, secret=SECRET)
    got = tokens.decode(token, SECRET, now=NOW)
    assert got["exp"] - got["iat"] == 86400


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ({"alg": "none", "typ": "JWT"}, "algorithm"),
        ({"alg": "HS512", "typ": "JWT"}, "algorithm"),
        ({"alg": "RS256", "typ": "JWT"}, "algorithm"),
        ({"alg": "hs256", "typ": "JWT"}, "algorithm"),
        ({"typ": "JWT"}, "algorithm"),
        ({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}, "header"),
    ],
)
def test_only_hs256_is_accepted(header: dict[str, object], why: str):
    with pytest.raises(tokens.InvalidToken, match=why):
        tokens.decode(forge(header, claims()), SECRET, now=NOW)


def test_an_unsigned_token_is_refused():
    head = b64(orjson.dumps({"alg": "none"}))
    body = b64(orjson.dumps(claims()))
    for token in (f"{head}.{body}.", f"{head}.{body}"):
        with pytest.raises(tokens.InvalidToken):
            tokens.decode(token, SECRET, now=NOW)


def test_a_bad_signature_is_refused():
    good = tokens.issue("alice", now=NOW, lifetime_s=60, secret=SECRET)
    with pytest.raises(tokens.InvalidToken, match="signature"):
        tokens.decode(good, b"another key of thirty-two bytes!", now=NOW)
    head, body, sig = good.split(".")
    other = b64(orjson.dumps({**claims(), "sub": "root"}))
    with pytest.raises(tokens.InvalidToken, match="signature"):
        tokens.decode(f"{head}.{other}.{sig}", SECRET, now=NOW)  # claims swapped
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    with pytest.raises(tokens.InvalidToken, match="signature"):
        tokens.decode(f"{head}.{body}.{flipped}", SECRET, now=NOW)


@pytest.mark.parametrize(
    ("body", "now", "why"),
    [
        (claims(), NOW + 3600, "expired"),
        (claims(exp=int(NOW) + 86401), NOW, "24 h"),
        (claims(sub=""), NOW, "subject"),
        ({"iat": int(NOW), "exp": int(NOW) + 60}, NOW, "subject"),
        ({"sub": "a", "exp": int(NOW) + 60}, NOW, "iat or exp"),
        (claims(exp="tomorrow"), NOW, "iat or exp"),
        (claims(exp=True), NOW, "iat or exp"),
        (claims(iat=int(NOW) + 3000, exp=int(NOW) + 3600), NOW, "future"),
    ],
)
def test_claims_are_checked(body: dict[str, object], now: float, why: str):
    with pytest.raises(tokens.InvalidToken, match=why):
        tokens.decode(forge({"alg": "HS256", "typ": "JWT"}, body), SECRET, now=now)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.x.y",
        "x" * 5000,
        "é.x.y",
        "e30.e30.",
        "W10.e30.AAAA",
        "e30=.e30.x",
    ],
)
def test_garbage_is_refused_without_a_crash(token: str):
    with pytest.raises(tokens.InvalidToken):
        tokens.decode(token, SECRET, now=NOW)


async def test_the_signing_key_is_made_once_and_shared_through_the_store(tmp_path: Path):
    from relay.store import open_store

    store = await open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    try:
        first = await tokens.signing_key(store, tmp_path, 1.0)
        assert len(first) == 32
        assert not (tmp_path / tokens.SECRET_FILE).exists()  # nothing beside the database
        # a restart (or another relay on the same store) keeps signed-in users signed in
        assert await tokens.signing_key(store, tmp_path, 2.0) == first
    finally:
        await store.close()


async def test_a_key_file_of_an_earlier_version_becomes_the_stored_key(tmp_path: Path):
    from relay.store import open_store

    old = bytes(range(32))
    (tmp_path / tokens.SECRET_FILE).write_text(old.hex() + "\n")
    store = await open_store(f"sqlite:///{tmp_path / 'relay.db'}")
    try:
        assert await tokens.signing_key(store, tmp_path, 1.0) == old  # tokens out stay valid
    finally:
        await store.close()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / tokens.SECRET_FILE).write_text("short\n")
    store = await open_store(f"sqlite:///{tmp_path / 'b' / 'relay.db'}")
    try:
        assert len(await tokens.signing_key(store, tmp_path / "b", 1.0)) == 32
    finally:
        await store.close()


def test_session_values_are_long_and_only_their_digest_is_kept():
    a, b = tokens.new_session_value(), tokens.new_session_value()
    assert a != b and len(base64.urlsafe_b64decode(a + "=")) == 32  # 256 bits
    assert tokens.session_digest(a) == hashlib.sha256(a.encode()).hexdigest()


def test_password_hashes_are_salted_scrypt_and_verify():
    one, two = passwords.hash_password("correct horse"), passwords.hash_password("correct horse")
    assert one != two  # salted
    scheme, log2_n, r, p, _salt, _key = one.split("$")
    assert (scheme, int(log2_n), int(r), int(p)) == ("scrypt", 15, 8, 1)
    assert 128 * 2**15 * 8 >= 32 * 1024 * 1024  # memory-hard: 32 MiB per hash
    assert "correct" not in one
    assert passwords.verify("correct horse", one)
    assert not passwords.verify("correct horsE", one)
    assert not passwords.verify("correct horse", None)
    assert not passwords.verify("x", "md5$abc")


def test_an_unknown_user_costs_the_same_as_a_known_one():
    stored = passwords.hash_password("a password")
    passwords.verify("warm up", None)  # the dummy hash is made once

    def cost(hashed: str | None) -> float:
        start = time.perf_counter()
        passwords.verify("a guess", hashed)
        return time.perf_counter() - start

    known = min(cost(stored) for _ in range(3))
    unknown = min(cost(None) for _ in range(3))
    assert 0.5 < unknown / known < 2.0, (known, unknown)


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("", False),
        ("short", False),
        ("long enough", True),
        ("x" * 1025, False),
        ("tab\there", False),
    ],
)
def test_new_password_rules(password: str, ok: bool):
    assert (passwords.weakness(password) is None) is ok


def test_failures_block_within_their_window_and_then_free():
    failures = Failures(limit=3, window_s=60)
    for at in (0.0, 10.0):
        failures.fail("k", at)
    assert failures.blocked_for("k", 20.0) is None
    failures.fail("k", 20.0)
    assert failures.blocked_for("k", 30.0) == 30.0  # until the first leaves the window
    assert failures.blocked_for("other", 30.0) is None
    assert failures.blocked_for("k", 60.0) is None
    failures.fail("k", 61.0)
    assert failures.blocked_for("k", 61.0) == 9.0
    failures.clear("k")
    assert failures.blocked_for("k", 61.0) is None


def test_failures_forget_the_oldest_keys_past_their_bound():
    failures = Failures(limit=1, window_s=60, max_keys=2)
    for key in ("a", "b", "c"):
        failures.fail(key, 1.0)
    assert failures.blocked_for("a", 2.0) is None
    assert failures.blocked_for("c", 2.0) is not None
