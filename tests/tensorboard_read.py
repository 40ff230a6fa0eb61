#!/usr/bin/env python3
"""Reads run folders' TensorBoard event files with TensorBoard's own reader
(EventAccumulator, which also applies SessionLog.START purges) and prints, per run, the
scalar tags with their steps, the image and text summaries, the hparams records and the
custom scalars layout, as one JSON object. tests/tensorboard.rs asserts on it.

  python3 tests/tensorboard_read.py RUN_DIR [RUN_DIR ...]
  python3 tests/tensorboard_read.py --file-steps EVENT_FILE   (one file, no purging: tag -> steps)
"""
import json
import sys

from google.protobuf.json_format import MessageToDict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.hparams import plugin_data_pb2

LAYOUT_TAG = custom_scalar_metadata.CONFIG_SUMMARY_TAG


def read(run_dir):
    ea = EventAccumulator(run_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    out = {
        "scalars": {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in tags["scalars"]},
        "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in ea.Images(t)] for t in tags["images"]},
        "text": {
            t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in ea.Tensors(t)]
            for t in tags["tensors"]
            if t != LAYOUT_TAG
        },
        "hparams": {},
        "layout": None,
    }
    if LAYOUT_TAG in tags["tensors"]:
        layout = layout_pb2.Layout.FromString(ea.Tensors(LAYOUT_TAG)[-1].tensor_proto.string_val[0])
        out["layout"] = {
            c.title: {chart.title: list(chart.multiline.tag) for chart in c.chart} for c in layout.category
        }
    try:
        contents = ea.PluginTagToContent("hparams")
    except KeyError:
        contents = {}
    for tag, content in contents.items():
        out["hparams"][tag] = MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(content))
    return out


def file_steps(path):
    steps = {}
    for event in EventFileLoader(path).Load():
        for value in event.summary.value:
            steps.setdefault(value.tag, []).append(event.step)
    return steps


if __name__ == "__main__":
    if sys.argv[1] == "--file-steps":
        print(json.dumps(file_steps(sys.argv[2])))
    else:
        print(json.dumps({d: read(d) for d in sys.argv[1:]}))
