"""``published.yaml``: every number has a source; ``report.md`` puts measured numbers beside them."""

from __future__ import annotations

import yaml

from medseg.config import load_config
from medseg.pipeline.report import load_published, published_path, write_report
from medseg.resources import list_pipelines


def test_every_published_number_names_its_source_and_every_pipeline_has_an_entry():
    table = yaml.safe_load(published_path().read_text())
    sources = table.pop("_sources")
    numbers = 0
    for name, entry in table.items():
        assert entry["paper"] and entry["dataset"], name
        for row in entry["results"]:
            if row["value"] == "not published":
                continue
            assert isinstance(row["value"], float), (name, row)
            assert row["source"].split(",")[0] in sources, (name, row)
            numbers += 1
    assert numbers >= 6
    names = {yaml.safe_load(path.read_text())["name"] for path in list_pipelines().values()}
    assert names <= set(table), names - set(table)


def test_report_puts_the_measured_value_beside_the_published_one_with_its_source(tmp_path):
    entry, sources = load_published("ctc-phc-u373-unet")
    assert entry["results"][0]["value"] == 0.9203
    summary = {
        "data": "real",
        "smoke": False,
        "iterations": 10,
        "train_seconds": 1.0,
        "device": "cpu",
        "challenge_format": "ctc",
        "submission": [],
    }
    challenge = {"foreground_mean": {"seg": 0.81234, "aji": 0.7}}
    config = load_config(list_pipelines()["isbi2012"], ["name=ctc-phc-u373-unet"])
    text = write_report(tmp_path, config, summary, None, challenge).read_text()
    row = next(line for line in text.splitlines() if "IoU (CTC SEG)" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:4] == ["0.8123", "0.9203"]
    assert sources["unet2015"] in cells[4] and "Table 2" in cells[4]
    assert "Synthetic data" not in text


def test_a_pipeline_without_published_results_says_so(tmp_path):
    config = load_config(list_pipelines()["isbi2012"], ["name=my-own"])
    summary = {"data": "synthetic", "smoke": True, "challenge_format": "labelmap", "submission": []}
    text = write_report(tmp_path, config, summary, {"foreground_mean": {"dice": 0.5}}, None).read_text()
    assert "No published results are recorded for pipeline `my-own`" in text
    assert "| dice | 0.5 |" in text and "Synthetic data" in text
