"""An evidence bundle's files: which it must hold, and reading them from the zip.

Pure. Exactly entries.jsonl, manifest.json and signature.json, each once; the manifest
must be of this format. Format 1 (before manifests were signed) is refused with a word
on why, so an old bundle is not mistaken for a forged one.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from projections.audit.bundle_signature import SIGNATURE

FORMAT = "casebook-evidence-bundle/2"
FORMAT_1 = "casebook-evidence-bundle/1"  # its manifest was not signed
ENTRIES = "entries.jsonl"
MANIFEST = "manifest.json"
MEMBERS = (ENTRIES, MANIFEST, SIGNATURE)  # in this order, and nothing else


class BundleInvalid(ValueError):
    """A bundle that does not verify; the message names the first problem found."""


@dataclass(frozen=True)
class Members:
    """A bundle's three files: two as bytes, the manifest also parsed."""

    entries: bytes
    manifest_bytes: bytes
    manifest: dict[str, Any]
    signature: bytes


def read_zip(data: bytes) -> Members:
    """The bundle's files; refused when one is missing, extra or doubled, or the manifest
    is not of this format."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if MANIFEST not in names:
                raise BundleInvalid(f"the bundle has no {MANIFEST}")
            manifest = _manifest(manifest_bytes := archive.read(MANIFEST))
            for name in sorted(set(names)):
                if name not in MEMBERS:
                    raise BundleInvalid(f"the bundle holds a file it should not: {name}")
                if names.count(name) > 1:
                    raise BundleInvalid(f"the bundle holds {name} twice")
            for name in MEMBERS:
                if name not in names:
                    raise BundleInvalid(f"the bundle has no {name}")
            entries, signature = archive.read(ENTRIES), archive.read(SIGNATURE)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        raise BundleInvalid(f"not an evidence bundle (a zip file): {error}") from None
    return Members(entries, manifest_bytes, manifest, signature)


def _manifest(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise BundleInvalid(f"{MANIFEST} is not JSON: {error}") from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found == FORMAT_1:
        raise BundleInvalid(
            f"{MANIFEST}: format {FORMAT_1} has no signed manifest, which this verifier "
            "requires; export the bundle again"
        )
    if found != FORMAT:
        raise BundleInvalid(f"{MANIFEST}: unknown format (expected {FORMAT})")
    return dict(manifest)
