#!/usr/bin/env python3
"""Write models/manifest.json: every model the project ships (name, file, sha256, input
contract, labels, source, licence) and the models it uses from the shared data directory
(relative path and sha256; not copied).

    python3 tools/stgcn/manifest.py
"""
import hashlib
import json
import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(REPO, "models")

# Licence terms (README "Licences"). The weights the project trains are under the project's
# licence, but they are learnt from datasets whose terms allow research use only: whoever ships
# them inherits those terms. Each dataset: name, where the project took it, its terms, and
# whether they allow commercial use (allows_commercial_use: True, False, or None when the terms
# do not say).
DATASETS = {
    "UP-Fall": dict(source="Tresor-Koffi/3D_skeletons-UP-Fall-Dataset @ 0c01b25 (repository without a licence)",
                    terms="UP-Fall Detection Dataset: academic use (to be verified with its authors)",
                    allows_commercial_use=False),
    "URFD": dict(source="ispstiima/MD4FD-Dataset @ cf7f6c3 (repository without a licence)",
                 terms="UR Fall Detection Dataset: CC BY-NC-SA 4.0 (non-commercial, share-alike)",
                 allows_commercial_use=False),
    "Le2i Home": dict(source="ispstiima/MD4FD-Dataset @ cf7f6c3 (repository without a licence)",
                      terms="Le2i fall dataset: research use, no licence given",
                      allows_commercial_use=None),
    "Penn Action": dict(source="samaonline/Hierarchical-Model-for-Long-term-Video-Prediction @ 675580d (code Apache-2.0)",
                        terms="Penn Action (Zhang, Zhu, Derpanis, ICCV 2013): research use, no explicit licence",
                        allows_commercial_use=None),
    "JHMDB": dict(source="fandulu/DD-Net @ f26a999 (code MIT)",
                  terms="JHMDB: research use",
                  allows_commercial_use=None),
    "COCO 2017 keypoints": dict(source="as trained by Ultralytics (COCO-pose)",
                                terms="annotations CC BY 4.0; images under the Flickr terms of their owners",
                                allows_commercial_use=None),
}
RESEARCH_ONLY = ("not cleared for commercial use: the weights inherit the research / non-commercial "
                 "terms of their training data; a product must retrain them (tools/stgcn) on data "
                 "licensed for commercial use and ship those weights instead")
AGPL_POSE = ("AGPL-3.0 (Ultralytics): Ultralytics's terms require software that ships these "
             "weights, or serves them over a network, to be released with its complete source "
             "under the AGPL-3.0, unless it holds an Ultralytics Enterprise licence; a closed "
             "product swaps them for a permissively licensed pose model in the same contract "
             "(e.g. RTMO weights of OpenMMLab mmpose, Apache-2.0, after checking the terms of "
             "their training data)")


def data_terms(*names):
    return [dict(dataset=n, **DATASETS[n]) for n in names]


ACTION_MODELS = {
    "fall_stgcnpp": dict(
        task="fall",
        source="trained by this project: tools/stgcn (train.py fall), see models/fall_stgcnpp.md",
        data=["UP-Fall (3D_skeletons-UP-Fall-Dataset @ 0c01b25)", "MD4FD URFD + Le2i Home "
              "(ispstiima/MD4FD-Dataset @ cf7f6c3)", "Penn Action", "JHMDB (DD-Net @ f26a999)"],
        licence="weights: same terms as the project; training data research / non-commercial "
                "use only (URFD CC BY-NC-SA 4.0, UP-Fall academic use, Le2i, Penn Action and "
                "JHMDB research use): see the model card",
        weights_licence="MIT (the project's licence: trained by this project)",
        training_data_licences=data_terms("UP-Fall", "URFD", "Le2i Home", "Penn Action", "JHMDB"),
        commercial_use=RESEARCH_ONLY),
    "penn_action_stgcnpp": dict(
        task="penn",
        source="trained by this project: tools/stgcn (train.py penn), see models/penn_action_stgcnpp.md",
        data=["Penn Action (official train split)"],
        licence="weights: same terms as the project; training data Penn Action: research use, "
                "no explicit licence: see the model card",
        weights_licence="MIT (the project's licence: trained by this project)",
        training_data_licences=data_terms("Penn Action"),
        commercial_use=RESEARCH_ONLY),
}

SHARED_MODELS = [
    dict(path="models/pose/yolo11n-pose_rtmo-contract.onnx",
         use="pose model of the real-video check (tools/stgcn/video_tracks.py)",
         licence="AGPL-3.0 (Ultralytics weights)",
         weights_licence="AGPL-3.0 (Ultralytics YOLO11n-pose weights, wrapped into the RTMO contract)",
         training_data_licences=data_terms("COCO 2017 keypoints"),
         commercial_use=AGPL_POSE),
    dict(path="models/pose/yolo11n-pose_dynamic.onnx",
         use="raw YOLO-pose export with a dynamic batch: rtmopose session-group batching "
             "(tests/shared_session.rs, benches/shared_session.rs); not in the data directory's "
             "SHA256SUMS, so scripts/setup checks this sha256",
         licence="AGPL-3.0 (Ultralytics weights)",
         weights_licence="AGPL-3.0 (Ultralytics YOLO11n-pose weights)",
         training_data_licences=data_terms("COCO 2017 keypoints"),
         commercial_use=AGPL_POSE),
    dict(path="models/contract/stgcnpp_ntu60-shape_random-weights.onnx",
         use="contract/shape test model for stgcnclassify (M = 2, 60 classes, random weights)",
         licence="Apache-2.0 architecture",
         weights_licence="Apache-2.0 (mmaction2 architecture; random weights)",
         training_data_licences=[],
         commercial_use="no restriction from data (random weights, untrained): for tests only, it recognises nothing"),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def contract(path):
    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}

    def dims(v):
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    return dict(
        input=dict(name=m.graph.input[0].name, shape=dims(m.graph.input[0]), dtype="float32",
                   layout="[N, M, T, V, C], C = (x, y, score)"),
        output=dict(name=m.graph.output[0].name, shape=dims(m.graph.output[0]),
                    meaning=meta.get("recognizer.output")),
        normalization=meta.get("recognizer.normalization"),
        window=int(meta["recognizer.window"]), min_frames=int(meta["recognizer.min_frames"]),
        score_threshold=0.01, opset=max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
        metadata_props=meta), meta["recognizer.labels"].split("\n")


def main():
    doc = dict(description="Models shipped in models/ and models used from the shared data "
                           "directory ($RECOGNIZER_DATA, default ../shared; not copied).",
               models=[], shared_models=[])
    for name, info in ACTION_MODELS.items():
        f = os.path.join(MODELS, name + ".onnx")
        if not os.path.exists(f):
            print(f"skip {name}: {f} missing", file=sys.stderr)
            continue
        c, labels = contract(f)
        doc["models"].append(dict(name=name, kind="action (ST-GCN++)", file=f"models/{name}.onnx",
                                  sha256=sha256(f), bytes=os.path.getsize(f),
                                  labels_file=f"models/{name}.labels", labels=labels,
                                  card=f"models/{name}.md", contract=c, source=info["source"],
                                  training_data=info["data"], licence=info["licence"],
                                  weights_licence=info["weights_licence"],
                                  training_data_licences=info["training_data_licences"],
                                  commercial_use=info["commercial_use"]))
    root = data.data_root()
    for m in SHARED_MODELS:
        f = os.path.join(root, m["path"])
        doc["shared_models"].append(dict(m, sha256=sha256(f) if os.path.exists(f) else None))
    with open(os.path.join(MODELS, "manifest.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(json.dumps([(m["name"], m["sha256"][:12]) for m in doc["models"]]))


if __name__ == "__main__":
    main()
