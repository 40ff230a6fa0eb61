#!/usr/bin/env python3
"""Reads run folders' TensorBoard event files with TensorBoard's own reader
(EventAccumulator, which also applies SessionLog.START purges) and prints, per run, the
scalar tags with their steps, the image and text summaries, and the hparams records, as
one JSON object. tests/tensorboard.rs asserts on it.

  python3 tests/tensorboard_read.py RUN_DIR [RUN_DIR ...]
  python3 tests/tensorboard_read.py --file-steps EVENT_FILE   (one file, no purging: tag -> steps)
"""
import json
import sys

from google.protobuf.json_format import MessageToDict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2


def read(run_dir):
    ea = EventAccumulator(f"{run_dir}/tensorboard", size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    out = {
        "scalars": {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in tags["scalars"]},
        "images": {t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in ea.Images(t)] for t in tags["images"]},
        "text": {t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in ea.Tensors(t)] for t in tags["tensors"]},
        "hparams": {},
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
