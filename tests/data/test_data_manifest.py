"""Every shipped manifest validates; unknown keys and bad values are ConfigErrors naming file and key."""

from __future__ import annotations

import pytest
import yaml

from medseg.data.dental import DENTAL_CLASSES
from medseg.data.em import EM_CLASSES, ISBI_ON_DISK
from medseg.data.manifest import find_manifest, list_manifests, load_manifest
from medseg.errors import ConfigError, DataNotFoundError

EXPECTED = {
    "isbi2012",
    "cremi",
    "dental_isbi2015",
    "ctc_phc_u373",
    "ctc_dic_hela",
    "monuseg2018",
    "glas2015",
    "lab_folder",
    "nnunet_raw",
}


def test_every_manifest_loads():
    found = list_manifests()
    assert set(found) >= EXPECTED
    for name, path in found.items():
        manifest = load_manifest(path)
        assert manifest.name == name == path.stem
        for f in manifest.files:
            # a checksum that medseg did not compute must say where it comes from; unknown ones carry a note
            if f.sha256 is not None:
                assert f.sha256_source, f"{name}:{f.name} has a sha256 without sha256_source"
            else:
                assert f.note, f"{name}:{f.name} has no sha256 and no note saying why"
            if f.url is not None:
                assert f.sha256 is not None, f"{name}:{f.name} has a URL but no sha256"
                assert f.size is not None or "size not published" in (f.note or "").lower()


def test_manifests_cite_nothing_outside_the_repository():
    for name, path in list_manifests().items():
        text = path.read_text(encoding="utf-8")
        assert "/work/" not in text and "CHALLENGES.md" not in text, (
            f"{name} cites a path outside the repository"
        )
        assert text.startswith("#") and (
            "docs/datasets.md" in text.splitlines()[0] + text.splitlines()[1] or name == "lab_folder"
        )


def test_isbi2012_points_at_the_public_mirror():
    isbi = load_manifest(find_manifest("isbi2012"))
    [mirror] = isbi.files
    assert (mirror.name, mirror.url) == ("isbi.h5", "https://oc.embl.de/index.php/s/h0TkwqxU0PJDdMd/download")
    assert mirror.sha256 == "0e10fe909a1243084d91773470856993b7d40126a12e85f0f1345a7a9e512f29"
    assert isbi.labels.kind == "classes"


def test_old_label_kind_words_are_accepted(tmp_path, make_manifest):
    manifest = load_manifest(make_manifest(tmp_path / "toy.yaml", []))  # the fixture says kind: semantic
    assert manifest.labels.kind == "classes"


def test_manifests_agree_with_loader_constants():
    isbi = load_manifest(find_manifest("isbi2012"))
    assert isbi.labels.on_disk == ISBI_ON_DISK
    assert isbi.labels.classes == {name: i for i, name in enumerate(EM_CLASSES)}
    dental = load_manifest(find_manifest("dental_isbi2015"))
    assert dental.labels.classes == {name: i for i, name in enumerate(DENTAL_CLASSES)}


def test_unknown_key_names_file_and_key(tmp_path, make_manifest):
    path = make_manifest(tmp_path / "toy.yaml", [{"name": "a.bin", "sha256": None, "note": "x"}])
    data = yaml.safe_load(path.read_text())
    data["files"][0]["checksum"] = "abc"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"toy\.yaml.*\n.*unknown key 'checksum' in files\.0"):
        load_manifest(path)


def test_bad_sha256_and_missing_key(tmp_path, make_manifest):
    path = make_manifest(tmp_path / "toy.yaml", [{"name": "a.bin", "sha256": "1234"}])
    with pytest.raises(ConfigError, match=r"key 'files\.0\.sha256'.*64 hex digits"):
        load_manifest(path)
    data = yaml.safe_load(path.read_text())
    del data["licence"]
    data["files"] = []
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="missing key 'licence'"):
        load_manifest(path)


def test_file_name_must_be_plain(tmp_path, make_manifest):
    path = make_manifest(tmp_path / "toy.yaml", [{"name": "../escape.bin"}])
    with pytest.raises(ConfigError, match="plain file name"):
        load_manifest(path)


def test_unknown_name_lists_known(tmp_path):
    with pytest.raises(DataNotFoundError, match="unknown dataset 'nope'.*isbi2012"):
        find_manifest("nope")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        find_manifest(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_manifest(bad)
