"""deb822 .sources files read as apt reads them (python-debian's parser): continuation lines,
Enabled: no, Signed-By as paths (also on a continuation line) or an inline key block, several
Types/URIs/Suites in one stanza."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from orchestrator.apt import sources
from orchestrator.apt.sources import AptSource
from orchestrator.config import loader
from orchestrator.release import apt_check
from tests.fakes.publish_harness import FEATURES

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
BLOCK = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0x1pRYJKwYBBAHaRw8BAQdA\n=abcd\n"
         "-----END PGP PUBLIC KEY BLOCK-----\n")


def test_signed_by_on_a_continuation_line_is_a_path_not_an_inline_key() -> None:
    text = (f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n"
            f"Components: main\nSigned-By:\n {KEYRING}\n")
    assert sources.parse_deb822(text) == [
        AptSource("http://deb.debian.org/debian", "bookworm", ("main",), KEYRING)]


def test_several_signed_by_paths_are_kept_comma_separated() -> None:
    text = ("Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n"
            f"Signed-By: {KEYRING},\n /etc/apt/keyrings/extra.gpg\n")
    (src,) = sources.parse_deb822(text)
    assert src.signed_by == f"{KEYRING},/etc/apt/keyrings/extra.gpg" and not src.signed_by_key


def test_disabled_stanzas_are_skipped_however_apt_spells_no() -> None:
    stanza = "Types: deb\nURIs: http://m/{n}\nSuites: bookworm\nComponents: main\n"
    text = "\n".join(stanza.format(n=n) + (f"Enabled: {e}\n" if e else "")
                     for n, e in enumerate(["no", "No", "false", "0", "off", "yes", "", "True"]))
    assert [s.uri for s in sources.parse_deb822(text)] == ["http://m/5", "http://m/6",
                                                                "http://m/7"]


def test_an_inline_key_block_is_kept_as_apt_reads_it() -> None:
    lines = BLOCK.rstrip("\n").splitlines()
    text = ("Types: deb\nURIs: http://ppa.test/ubuntu\nSuites: noble\nComponents: main\n"
            "Signed-By:\n" + "".join(f" {line or '.'}\n" for line in lines)
            + "Trusted: no\n")
    (src,) = sources.parse_deb822(text)
    assert (src.signed_by, src.signed_by_key, src.trusted) == ("inline", BLOCK, False)
    # the label keeps the block; a source without one is labelled as before
    assert sources.from_label(sources.to_label([src])) == [src]
    plain = AptSource("http://m/debian", "bookworm", ("main",), KEYRING)
    assert "signed_by_key" not in sources.to_label([plain])


def test_several_types_uris_and_suites_comments_and_continued_fields() -> None:
    text = ("# the distro's sources\n"
            "Types: deb-src deb\n"
            "URIs: http://a.test/ubuntu/\n"
            "  http://b.test/ubuntu\n"
            "# a comment inside the stanza\n"
            "Suites: noble\n noble-updates\n"
            "Components: main\n\tuniverse\n"
            "Trusted: yes\n"
            "   \n"  # a line of blanks ends the stanza, as an empty one does
            "Types: deb-src\nURIs: http://src.test\nSuites: noble\nComponents: main\n")
    got = sources.parse_deb822(text)
    assert [(s.uri, s.suite) for s in got] == [
        ("http://a.test/ubuntu", "noble"), ("http://a.test/ubuntu", "noble-updates"),
        ("http://b.test/ubuntu", "noble"), ("http://b.test/ubuntu", "noble-updates")]
    assert all(s.components == ("main", "universe") and s.trusted for s in got)


def test_the_keyring_of_a_source_with_several_signed_by_paths(tmp_path: Path) -> None:
    loaded = loader.load(FEATURES / "images.yaml", dt.date(2026, 11, 21))
    d = tmp_path / "k"
    d.mkdir()
    (d / "extra.gpg").write_bytes(b"k")
    cfg = loaded.config.model_copy(update={"sources": loaded.config.sources.model_copy(
        update={"apt_keyrings": (str(d),)})})
    resolve = apt_check.keyring_resolver(cfg, "debian", tmp_path)
    both = AptSource("http://m", "b", ("main",), "/etc/apt/keyrings/missing.gpg,/etc/apt/keyrings/extra.gpg")
    assert resolve(both) == d / "extra.gpg"
    # a label from an orchestrator that did not keep the inline block: no keyring to check with
    assert resolve(AptSource("http://m", "b", ("main",), "inline")) is None
