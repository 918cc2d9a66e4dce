"""Tenant id rules and the tenant id -> directory name mapping (tenantvec._ids)."""

from __future__ import annotations

import itertools
import os
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tenantvec
from tenantvec._ids import (
    MAX_TENANT_ID,
    check_tenant_id,
    new_record_id,
    tenant_dir_name,
    tenant_id_from_dir_name,
)
from tenantvec.errors import InvalidTenantId, TenantVecError

HYP = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BAD_IDS = [
    "",
    "x" * 129,
    "é" * 129,
    "a\x00b",
    "a\nb",
    "tab\there",
    "bell\x07",
    "del\x7f",
    "c1\x85control",
    "\x9f",
    "a/b",
    "/",
    "../etc",
    "a\\b",
    "\\",
    ".",
    "..",
    " acme",
    "acme ",
    " ",
    "acme\u00a0",  # no-break space is whitespace
    "\u2003acme",  # em space
    "a\ud800",  # lone surrogate
]

GOOD_IDS = [
    "acme",
    "Acme",
    "ACME",
    "a",
    "x" * 128,
    "日" * 128,
    "😀" * 128,
    "Ünïcødé tenant",
    "user@example.com",
    "org:42",
    "...",
    "a..b",
    ".hidden",
    "-",
    "_",
    "~tilde",
    "_41cme",  # looks like an escaped name
    "tenant id with spaces",
    "CON",
    "nul",
    "a" * 67 + "É",
]


def valid_by_rules(s: str) -> bool:
    """DESIGN.md's tenant id rules, written independently of tenantvec._ids."""
    return (
        0 < len(s) <= 128
        and not any(unicodedata.category(c) in ("Cc", "Cs") for c in s)
        and "/" not in s
        and "\\" not in s
        and s not in (".", "..")
        and s == s.strip()
    )


NAME_RE = re.compile(r"^(?:[a-z0-9_-]+|~[0-9a-f]+)$")

any_text = st.text(max_size=140) | st.text(st.characters(codec="utf-8"), max_size=140)
# Drawn mostly valid, so that the filter (leading or trailing whitespace, "." and "..")
# rejects few: drawing any text and filtering out control characters and slashes threw
# away enough pairs to fail Hypothesis's filter_too_much health check now and then.
_id_chars = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\")
valid_ids = st.one_of(
    st.text(_id_chars, min_size=1, max_size=128),
    st.text(st.sampled_from("aAbB_-.~ é%01"), min_size=1, max_size=20),
    # long escapes -> hashed
    st.text(st.characters(min_codepoint=0x80, blacklist_categories=("Cc", "Cs")), min_size=40, max_size=128),
).filter(valid_by_rules)


# ------------------------------------------------------------------ check_tenant_id
@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_ids_are_rejected_naming_the_value(bad):
    with pytest.raises(InvalidTenantId) as ei:
        check_tenant_id(bad)
    assert isinstance(ei.value, TenantVecError)
    assert isinstance(ei.value, ValueError)
    assert repr(bad) in str(ei.value)


@pytest.mark.parametrize("bad", [None, 42, b"acme", ["acme"], 1.5], ids=repr)
def test_non_string_ids_are_rejected(bad):
    with pytest.raises(InvalidTenantId) as ei:
        check_tenant_id(bad)
    assert repr(bad) in str(ei.value)


@pytest.mark.parametrize("good", GOOD_IDS, ids=repr)
def test_good_ids_are_accepted(good):
    assert check_tenant_id(good) == good


def test_max_length_is_128_characters_not_bytes():
    assert MAX_TENANT_ID == 128
    assert check_tenant_id("😀" * 128) == "😀" * 128  # 512 UTF-8 bytes
    with pytest.raises(InvalidTenantId, match="129"):
        check_tenant_id("a" * 129)


@HYP
@given(s=any_text)
def test_check_tenant_id_follows_the_rules(s):
    if valid_by_rules(s):
        assert check_tenant_id(s) == s
    else:
        with pytest.raises(InvalidTenantId):
            check_tenant_id(s)


# ------------------------------------------------------------------ directory names
def assert_safe_name(name: str) -> None:
    assert NAME_RE.match(name), name
    assert name not in (".", "..")
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert not name.startswith(".")
    assert 0 < len(name) <= 200
    assert len(name.encode()) <= 200


@pytest.mark.parametrize("tid", GOOD_IDS, ids=repr)
def test_dir_name_is_safe_and_round_trips(tid):
    name = tenant_dir_name(tid)
    assert_safe_name(name)
    assert tenant_dir_name(tid) == name  # stable
    if name.startswith("~"):
        assert tenant_id_from_dir_name(name) is None
    else:
        assert tenant_id_from_dir_name(name) == tid


def test_dir_name_encoding_is_pinned():
    # The on-disk contract: changing this orphans every existing tenant directory.
    assert tenant_dir_name("acme") == "acme"
    assert tenant_dir_name("Acme") == "_41cme"
    assert tenant_dir_name("a_b") == "a_5fb"
    assert tenant_dir_name("a.b") == "a_2eb"
    assert tenant_dir_name("é") == "_c3_a9"
    long_name = tenant_dir_name("😀" * 128)
    assert long_name.startswith("~")
    assert len(long_name) == 65


@pytest.mark.parametrize(
    "ids",
    [
        ["Acme", "acme", "ACME", "aCME"],
        ["a_b", "a_5fb", "a_5f_5fb"],
        ["_41cme", "Acme"],
        ["x" * 128, "X" + "x" * 127],
        ["é", "É", "e\u0301"],  # precomposed, uppercase, combining accent
        [".", "_2e", "..."],
    ],
    ids=repr,
)
def test_dir_names_distinct_also_case_insensitively(ids):
    names = [tenant_dir_name(i) for i in ids if valid_by_rules(i)]
    assert len(set(names)) == len(names)
    assert len({n.lower() for n in names}) == len(names)
    assert len({n.casefold() for n in names}) == len(names)


@HYP
@given(ids=st.lists(valid_ids, min_size=2, max_size=12, unique=True))
def test_dir_name_injective(ids):
    names = [tenant_dir_name(i) for i in ids]
    for name in names:
        assert_safe_name(name)
    assert len(set(names)) == len(ids)
    assert len({n.lower() for n in names}) == len(ids)
    assert len({n.upper() for n in names}) == len(ids)


@HYP
@given(a=valid_ids, b=valid_ids)
def test_dir_name_injective_pairs(a, b):
    # no assume(a != b): Hypothesis draws equal pairs often, and discarding them could
    # fail its filter_too_much health check; equal ids must get equal names anyway
    assert (tenant_dir_name(a).lower() == tenant_dir_name(b).lower()) == (a == b)


@HYP
@given(tid=valid_ids)
def test_round_trip(tid):
    name = tenant_dir_name(tid)
    assert_safe_name(name)
    if name.startswith("~"):
        assert tenant_id_from_dir_name(name) is None
        assert len(name) == 65
    else:
        assert tenant_id_from_dir_name(name) == tid


@pytest.mark.parametrize(
    "name",
    [".tmp-abc", ".drop-0f", "ABC", "_zz", "_4", "~" + "0" * 64, "a b", "", "_61", "_5", "x_41_"],
)
def test_foreign_names_do_not_decode(name):
    # Temp/grave dirs, hashed names and non-canonical escapes are not tenant names.
    # ("_61" is an escaped "a", but the canonical name of "a" is "a".)
    assert tenant_id_from_dir_name(name) is None


def test_new_record_id_is_uuid4_hex():
    ids = {new_record_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


# ------------------------------------------------------------------ in a real store
def test_case_distinct_tenants_in_a_store(tmp_path):
    with tenantvec.Store(tmp_path / "s", dim=4) as store:
        upper = store.create_tenant("Acme")
        lower = store.create_tenant("acme")
        upper.add([[1, 0, 0, 0]], ids=["u"], metadata=[{"who": "Acme"}])
        lower.add([[0, 1, 0, 0]], ids=["l"], metadata=[{"who": "acme"}])
        assert store.tenants() == ["Acme", "acme"]
        assert [r.id for r in upper.get(where={})] == ["u"]
        assert [r.id for r in lower.get(where={})] == ["l"]
        assert [h.id for h in upper.query([0, 1, 0, 0], k=5)] == ["u"]
        assert not store.has_tenant("ACME")
        dirs = sorted(os.listdir(tmp_path / "s" / "tenants"))
        assert len(dirs) == 2
        assert len({d.lower() for d in dirs}) == 2
    with tenantvec.Store(tmp_path / "s") as store:
        assert store.tenants() == ["Acme", "acme"]
        assert store.tenant("Acme").get(ids=["u"])[0].metadata == {"who": "Acme"}


def test_odd_valid_ids_live_inside_the_tenants_dir(tmp_path):
    root = tmp_path / "s"
    with tenantvec.Store(root, dim=4) as store:
        for tid in GOOD_IDS:
            store.create_tenant(tid).add(np.ones((1, 4)), ids=["r"], metadata=[{"tenant": tid}])
        assert store.tenants() == sorted(GOOD_IDS)
        for tid in GOOD_IDS:
            assert store.has_tenant(tid)
            assert [r.metadata["tenant"] for r in store.tenant(tid).get(where={})] == [tid]
        entries = os.listdir(root / "tenants")
        assert len(entries) == len(GOOD_IDS)
        assert set(os.listdir(root)) == {"tenantvec.json", "LOCK", "tenants"}
    with tenantvec.Store(root) as store:  # listing survives a reopen (incl. hashed names)
        assert store.tenants() == sorted(GOOD_IDS)


_counter = itertools.count()


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tid=valid_ids)
def test_any_valid_id_works_in_a_store(tmp_path, tid):
    root = tmp_path / f"s{next(_counter)}"
    with tenantvec.Store(root, dim=2, durability="process") as store:
        store.create_tenant(tid)
        assert store.tenants() == [tid]
        assert store.has_tenant(tid)
        store.tenant(tid).add([[1.0, 2.0]], ids=["r"])
    with tenantvec.Store(root, readonly=True) as store:
        assert store.tenants() == [tid]
        assert store.tenant(tid).count() == 1
