"""Torch and ONNX predictors: one interface, same pre-processing, same tokens; graphs checked against cards."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from faceexpr_cli.onnx.parts import ExportError
from faceexpr_cli.onnx.predictor import BACKENDS, ChainPredictor, OnnxPredictor, TorchPredictor, load_chain
from faceexpr_cli.onnx.preprocess import sample_faces


@pytest.fixture(scope="module")
def chains(toy_export, toy_run):
    out, _ = toy_export
    return load_chain("onnx", out, outputs=["token"]), load_chain("torch", toy_run, outputs=["token"])


def test_backends_are_registered_by_name():
    assert BACKENDS.names() == ["onnx", "torch"]
    assert BACKENDS.get("onnx") is OnnxPredictor and BACKENDS.get("torch") is TorchPredictor


def test_onnx_tokens_reproduce_torch_tokens_on_real_faces(chains):
    onnx_chain, torch_chain = chains
    assert [type(p) for p in onnx_chain.predictors] == [OnnxPredictor, OnnxPredictor]
    assert [type(p) for p in torch_chain.predictors] == [TorchPredictor, TorchPredictor]
    assert onnx_chain.input_names == torch_chain.input_names == ["image", "subject"]
    faces = sample_faces((120, 120))  # astronaut, Grace Hopper
    x = onnx_chain.prepare_images(faces)
    np.testing.assert_array_equal(x, torch_chain.prepare_images(faces))  # shared pre-processing
    assert x.shape == (2, 3, 40, 40)  # the run's frame size, from the card the graph carries
    subjects = np.array([0, 1])
    a = onnx_chain.run({"image": x, "subject": subjects})
    b = torch_chain.run({"image": x, "subject": subjects})
    assert set(a) == set(b) == {"patch_tokens", "token"}
    np.testing.assert_allclose(a["token"], b["token"], atol=1e-5, rtol=1e-4)  # the card's tolerance
    np.testing.assert_allclose(np.linalg.norm(a["token"], axis=1), 1.0, atol=1e-5)
    assert not np.allclose(a["token"][0], a["token"][1], atol=1e-3)  # two faces, two tokens


def test_run_frames_batches_like_one_big_run(chains):
    onnx_chain, _ = chains
    frames = np.concatenate([sample_faces((64, 64))] * 3)  # 6 frames
    whole = onnx_chain.run({"image": onnx_chain.prepare_images(frames), "subject": np.zeros(6, np.int64)})
    parts = onnx_chain.run_frames(frames, batch_size=4, subject=0)
    np.testing.assert_allclose(parts["token"], whole["token"], atol=1e-6)
    assert parts["token"].shape == (6, 16)


def test_onnx_predictor_reads_its_card_and_refuses_a_graph_that_does_not_fit(toy_export, toy_cards):
    from faceexpr_cli.config.cards import load_card

    out, _ = toy_export
    path = out / "tokenizer" / "tokenizer.onnx"
    pred = OnnxPredictor(path)
    assert pred.card.name == "toy-tokenizer" and pred.part.name == "tokenizer" and pred.binding is None
    assert pred.providers == ["CPUExecutionProvider"]
    shipped = load_card("toy-tokenizer")  # preset dim 32: the exported graph has dim 16
    with pytest.raises(ExportError, match=r"output 'patch_tokens' has shape .* \(dim = 32\)"):
        OnnxPredictor(path, card=shipped)
    renamed = shipped.model_copy(deep=True)
    renamed.onnx.parts[0].inputs[0].name = "pixels"
    with pytest.raises(ExportError, match=r"graph inputs are \['image'\], card 'toy-tokenizer' part 'tokenizer'"):
        OnnxPredictor(path, card=renamed)


def test_missing_inputs_and_unknown_outputs_are_clear(chains, toy_export):
    from faceexpr_cli.errors import DataError, UnknownNameError

    onnx_chain, _ = chains
    with pytest.raises(DataError, match=r"missing inputs \['subject'\]"):
        onnx_chain.run({"image": np.zeros((1, 3, 40, 40), np.float32)})
    with pytest.raises(UnknownNameError, match="unknown output 'logits'"):
        load_chain("onnx", toy_export[0], outputs=["logits"])
    with pytest.raises(UnknownNameError, match="unknown inference backend 'tensorflow'"):
        load_chain("tensorflow", toy_export[0])
    assert isinstance(onnx_chain, ChainPredictor)


@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(), reason="needs onnxruntime-gpu")
def test_io_binding_on_cuda_matches_cpu(toy_export):  # runs on GPU machines only
    out, _ = toy_export
    cpu = load_chain("onnx", out, outputs=["token"])
    gpu = load_chain("onnx", out, outputs=["token"], device="cuda")
    assert all(p.binding is not None for p in gpu.predictors)
    frames = sample_faces((40, 40))
    np.testing.assert_allclose(gpu.run_frames(frames, subject=0)["token"], cpu.run_frames(frames, subject=0)["token"],
                               atol=1e-4)
