"""Demo: faces in video - track the sample talking head (and a two-person video), cut face clips with audio."""

from __future__ import annotations

from faceexpr_cli.demo.framework import DemoContext, demo_step


def _overlay(video, df, frame_time: float):
    """One source frame with each clip's face box (green) and crop square (yellow) drawn on it."""
    import cv2
    import numpy as np

    from faceexpr_cli.media import read_frames

    img = np.ascontiguousarray(read_frames(video, start=frame_time, max_frames=1)[0])
    for _, row in df.iterrows():
        if row["status"] != "ok":
            continue
        k = max(0, min(int(round((frame_time - row["start_time"]) * row["fps"])), int(row["n_frames"]) - 1))
        face = [int(round(v)) for v in row["face_boxes"][k]]
        crop = [int(round(v)) for v in row["crop_boxes"][k]]
        cv2.rectangle(img, face[:2], face[2:], (40, 220, 40), 2)
        cv2.rectangle(img, crop[:2], crop[2:], (240, 220, 40), 1)
        cv2.putText(img, f"track {row['track_id']}", (face[0], max(12, face[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (40, 220, 40), 1, cv2.LINE_AA)
    return img


@demo_step("crop", "Faces in video: tracking and fx crop", order=30, needs=("sample_video",))
def crop_faces(ctx: DemoContext) -> None:
    from faceexpr_cli.crop import CropOptions, crop_videos, read_manifest
    from faceexpr_cli.media import write_image
    from faceexpr_cli.samples import make_talking_head

    sample = ctx.state["sample_video"]
    two = make_talking_head(ctx.path("crop/two_faces.mp4"), portraits=("astronaut", "grace_hopper"), seconds=3.0,
                            width=640, height=360)
    out = ctx.path("crop/out")
    res = crop_videos([sample, two.path], out, CropOptions(mode="follow", size=256), resume=False,
                      overwrite=True)
    df = read_manifest(res.manifest)
    ok = df[df["status"] == "ok"]
    for source in (sample, two.path):
        rows = df[df["source"] == str(source.resolve())]
        overlay = ctx.path(f"crop/{source.stem}_tracks.png")
        write_image(overlay, _overlay(source, rows, 1.0))
        ctx.image(overlay, f"{source.name}: face boxes (green) and follow crops (yellow) at 1.0 s")
    for _, row in ok.iterrows():
        ctx.video(out / row["clip"], f"track {row['track_id']} of {row['source'].rsplit('/', 1)[-1]}: "
                                     f"{row['start_time']:.2f}-{row['end_time']:.2f} s, 256x256, audio kept")
    ctx.table([{"source": r["source"].rsplit("/", 1)[-1], "track": r["track_id"], "frames": r["n_frames"],
                "face px": round(float(r["face_size"]), 1), "score": round(float(r["mean_score"]), 2),
                "yaw": None if r["yaw_mean"] is None else round(float(r["yaw_mean"]), 1),
                "jitter": round(float(r["jitter"]), 4), "clip": r["clip"]} for _, r in ok.iterrows()],
              "manifest.parquet (one row per clip)")
    ctx.text(f"{res.stats['clips']} clips, {res.stats['clip_seconds']:.1f} s of face video in "
             f"{res.stats['wall_seconds']:.1f} s; manifest {res.manifest.name}, stats.json next to it")
    clips = [out / c for c in ok["clip"]]
    ctx.state["crop_manifest"] = res.manifest
    ctx.state["face_clips"] = clips
    if clips:
        ctx.state["face_clip"] = clips[0]  # the sample video's face clip, for later steps
    ctx.summary(clips=len(clips), failed=res.failed, wall_seconds=res.stats["wall_seconds"])
