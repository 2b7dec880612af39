"""Debian/Ubuntu archives: ``index`` (signed Release/Packages indices), ``sources``
(an image's apt sources), ``outdated`` (installed vs archive versions),
``keyrings`` and ``gpg_status`` (pinned keys, gpgv's verdict)."""
