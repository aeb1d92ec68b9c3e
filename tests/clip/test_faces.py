"""--faces: the seed's rule (exactly one face in every frame) with the face tracker, and face-cropped clips."""

from __future__ import annotations

import pyarrow.parquet as pq

from faceexpr_cli.cli.app import main
from faceexpr_cli.dataset import ClipDataset

CENTRE_TOL = 0.06  # of the crop side: dlib finds the face within ~2 %; a crop 15 % off-centre fails


def _face_centres(frames) -> list[tuple[float, float]]:
    """The face centre dlib finds in each decoded output frame (upsampled once: 96 px crops hold ~55 px faces)."""
    from faceexpr_cli.face import get_backend

    backend = get_backend("dlib", upsample=1).prepare()
    centres = []
    for frame in frames:
        faces = backend.detect(frame, keypoints=False)
        assert len(faces) == 1, f"{len(faces)} faces in an output frame"
        x0, y0, x1, y1 = faces[0].bbox
        centres.append(((x0 + x1) / 2, (y0 + y1) / 2))
    return centres


def test_one_face_windows_are_cropped_two_face_windows_dropped(face_talks, sample_video, tmp_path, capsys):
    one, two = face_talks
    out = tmp_path / "faces"
    code = main(["clip", str(one), str(two), "-k", "smile", "--post", "0.4", "--no-merge", "--faces",
                 "--face-size", "96", "-o", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert "2 clips" in stdout and "dropped 2 (not_one_face 2)" in stdout
    samples = list(ClipDataset(out))
    assert {s["meta"]["source"] for s in samples} == {str(one)}
    for s in samples:
        assert s["frames"].shape == (10, 96, 96, 3) and s["has_audio"]
        faces = s["meta"]["faces"]
        assert len(faces["crop_boxes"]) == 10 and faces["rule"] == "exactly one face in every frame"
        # the crop is centred on the ground-truth face of the generated video
        first = round(s["meta"]["actual_start"] * 25)
        gx = sample_video.actors[0].face_box[first]
        cx = (faces["crop_boxes"][0][0] + faces["crop_boxes"][0][2]) / 2
        assert abs(cx - (gx[0] + gx[2]) / 2) < 0.15 * (gx[2] - gx[0])
        # ... and the pixels agree: the face dlib finds in every decoded frame sits at the crop's centre
        for x, y in _face_centres(s["frames"].numpy()[::5]):
            assert abs(x - 48) < CENTRE_TOL * 96 and abs(y - 48) < CENTRE_TOL * 96, (x, y)
    rows = pq.read_table(out / "index.parquet").to_pylist()
    dropped = [r for r in rows if r["status"] == "dropped"]
    assert {r["source"] for r in dropped} == {str(two)}
    assert all("several faces on 10 of 10 frames" in r["error"] for r in dropped)
