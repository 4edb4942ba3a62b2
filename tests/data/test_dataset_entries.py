"""Every manifest against its dataset entry: one source of facts, hooks that agree with it.

For every shipped manifest: the entry's folder and label kind are the manifest's; its
challenge format exists and holds what the labels hold; its synthetic stand-in, written
at smoke size, lays out the files where the manifest's ``layout.paths`` say they are, and
the entry's loader reads labels of the manifest's kind back.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from medseg.data import list_manifests, load_manifest
from medseg.data.registry import DATASETS, HOOKS
from medseg.eval.formats import FormatKind, get_format

#: ``layout.paths`` roles that name files the training loader reads.
TRAIN_ROLES = ("train_images", "train_labels", "train_masks", "images", "labels", "train_h5")


def test_every_manifest_has_hooks_and_every_hook_a_manifest():
    assert set(HOOKS) == set(list_manifests()) == set(DATASETS)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_entry_facts_are_the_manifests(name):
    entry, manifest = DATASETS[name], load_manifest(list_manifests()[name])
    assert entry.manifest == manifest and entry.name == manifest.name == name
    assert entry.folder == manifest.layout.folder
    assert entry.label_kind == manifest.labels.kind
    fmt = get_format(entry.challenge_format)
    if manifest.labels.kind == "instances":
        assert fmt.kind is FormatKind.INSTANCES
    else:
        assert fmt.kind in (FormatKind.CLASSES, FormatKind.PROBABILITY)


def test_loader_constants_are_the_manifests():
    from medseg.data import em, histo

    isbi = DATASETS["isbi2012"].manifest
    assert em.ISBI2012_FILES["train"] == (
        isbi.layout.paths["train_images"],
        isbi.layout.paths["train_labels"],
    )
    assert em.ISBI2012_FILES["test"][0] == isbi.layout.paths["test_images"]
    assert isbi.layout.paths["train_h5"] == em.ISBI2012_MIRROR_FILE
    assert (isbi.layout.paths["raw_key"], isbi.layout.paths["label_key"]) == em.ISBI2012_MIRROR_KEYS
    assert list(em.ISBI2012_SPACING_NM) == isbi.spacing.values and isbi.spacing.unit == "nm"
    cremi = DATASETS["cremi"].manifest
    assert (
        cremi.layout.paths["raw_key"],
        cremi.layout.paths["label_key"],
    ) == (em.CREMI_RAW_KEY, em.CREMI_LABEL_KEY)
    glas = DATASETS["glas2015"].manifest
    assert glas.spacing.values == [histo.GLAS_MPP, histo.GLAS_MPP] and glas.spacing.unit == "um"


def _glob(pattern: str) -> str:
    return re.sub(r"\{[a-z]+\}", "*", pattern)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_synthetic_stand_in_follows_the_manifest_layout_and_loads(name, tmp_path):
    entry = DATASETS[name]
    assert entry.synthetic is not None, f"{name}: no synthetic stand-in"
    folder = tmp_path / entry.folder
    folder.mkdir()
    entry.write_synthetic(folder, smoke=True)
    paths = entry.manifest.layout.paths
    declared = {role: p for role, p in paths.items() if role in TRAIN_ROLES or role.startswith("sample_")}
    written = {role: sorted(folder.glob(_glob(p))) for role, p in declared.items()}
    # the mirror's isbi.h5 and the challenge TIFFs are alternatives: one of the two layouts is written
    if name == "isbi2012":
        written.pop("train_h5")
    assert written and all(written.values()), {
        role: paths[role] for role, hits in written.items() if not hits
    }
    samples = entry.train(folder)
    assert samples
    spacing = entry.manifest.spacing
    if spacing.values is not None:  # the loader gives the images the manifest's pixel size
        image = samples[0].image
        n = min(len(image.spacing), len(spacing.values))  # a section of a stack has the in-plane axes
        assert tuple(image.spacing)[-n:] == pytest.approx(tuple(spacing.values)[-n:])
        assert image.unit == spacing.unit
    label = samples[0].label
    values = np.unique(label.read() if hasattr(label, "read") else label.array)
    classes = entry.manifest.labels.classes
    if entry.label_kind == "instances":
        assert values.size > 3 and values.min() >= 0  # several objects, not classes
    elif len(classes) > 1:  # a dataset with its own class list (a lab folder brings its own)
        assert set(values.tolist()) <= set(classes.values())


def test_lab_folder_stand_in_writes_stacks_for_a_3d_pipeline(tmp_path):
    entry = DATASETS["lab_folder"]
    assert entry.write_synthetic(tmp_path, smoke=True, spatial_dims=3) == entry.synthetic.volume[1]
    samples = entry.train(tmp_path)
    assert len(samples) == entry.synthetic.volume[1][1]
    image, label = samples[0].image.array, samples[0].label.array
    assert image.shape == label.shape == (1, *entry.synthetic.volume[1][0])
    ids = np.unique(label[0])
    # one id per cell through the stack: every cell is in the first and the last section
    assert ids.size > 3 and set(np.unique(label[0, 0])) == set(np.unique(label[0, -1])) == set(ids)
