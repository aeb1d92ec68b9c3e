"""The frame-coded test video: the code band's layout pixel by pixel, reading codes back (resized, grey), the
beeping tone and its onset detector, and the video's own description."""

from __future__ import annotations

import numpy as np
import pytest

from faceexpr_cli.clip.synthetic import beep_onsets, code_frame, make_coded_video, read_code, tone_with_beeps


def test_code_band_layout():
    img = code_frame(5, 192, 96)  # 5 = bits 0 and 2
    assert img.shape == (96, 192, 3) and img.dtype == np.uint8
    # band: 96 / 6 = 16 rows; 12 blocks of 192 / 12 = 16 px, each lit inside a 2 px border
    assert (img[2:14, 2:14] == 255).all() and (img[2:14, 34:46] == 255).all()
    assert (img[2:14, 18:30] == 0).all() and (img[2:14, 50:190] == 0).all()
    assert (img[:2] == 0).all() and (img[14:16] == 0).all() and (img[:16, 14:18] == 0).all()
    # below the band, the gradient moved by 3 px per frame: (x + 15, 2y + 15, 96)
    assert img[16, 0].tolist() == [15, 47, 96] and img[20, 10].tolist() == [25, 55, 96]
    assert img[95, 191].tolist() == [(191 + 15) % 256, (190 + 15) % 256, 96]


def test_code_band_is_at_least_8_rows():
    img = code_frame(0, 120, 30)  # 30 / 6 = 5 rows would be too thin: 8
    assert (img[:8] == 0).all() and (img[8:, :, 2] == 96).all()
    img = code_frame(0, 120, 60)  # 60 / 6 = 10 rows
    assert (img[:10] == 0).all() and img[10, 0].tolist() == [0, 20, 96]


def test_code_gradient_wraps_with_the_frame_width():
    # shift = (index * 3) % width: frame 64 on a 192 px wide frame is shifted by 0
    assert code_frame(64, 192, 96)[20, 7].tolist() == [7, 40, 96]


@pytest.mark.parametrize("index", [0, 1, 2, 5, 1234, 2048, 4095])
def test_codes_read_back_full_size_halved_and_grey(index):
    img = code_frame(index, 192, 96)
    assert read_code(img) == index
    assert read_code(img[::2, ::2]) == index  # 96x48: the aspect kept
    assert read_code(img.mean(axis=2)) == index  # one channel


def test_tone_levels_and_beep_times():
    rate = 16000
    wave = tone_with_beeps(2.0, rate)
    assert wave.shape == (32000,)
    t = np.arange(32000) / rate
    quiet = (np.mod(t, 1.0) >= 0.12)
    assert np.abs(wave[quiet]).max() == pytest.approx(0.08, abs=1e-3)  # the 220 Hz tone alone
    assert np.abs(wave[~quiet]).max() > 0.7  # plus the 0.7 beep
    np.testing.assert_allclose(wave[quiet], 0.08 * np.sin(2 * np.pi * 220 * t[quiet]))
    beep = ~quiet
    np.testing.assert_allclose(wave[beep], 0.08 * np.sin(2 * np.pi * 220 * t[beep])
                               + 0.7 * np.sin(2 * np.pi * 1000 * t[beep]))
    assert len(tone_with_beeps(0.5, 1000, every=0.25, length=0.05)) == 500


def test_tone_beeps_every_and_length():
    rate = 16000
    wave = tone_with_beeps(1.0, rate, every=0.5, length=0.05)
    onsets = beep_onsets(wave, rate)
    np.testing.assert_allclose(onsets, [0.0, 0.5], atol=0.002)
    t = np.arange(len(wave)) / rate
    assert np.abs(wave[(t >= 0.06) & (t < 0.5)]).max() < 0.081  # no beep between 0.05 and 0.5


def test_beep_onsets_of_the_default_tone():
    np.testing.assert_allclose(beep_onsets(tone_with_beeps(3.0), 16000), [0.0, 1.0, 2.0], atol=0.002)


def test_beep_onsets_on_a_hand_made_wave():
    rate = 1000
    wave = np.zeros(1000)
    wave[300:400] = -0.5  # loud is |x| > 0.4, either sign
    wave[350] = 0.0  # one quiet sample inside the beep (a zero crossing) is no new onset
    wave[600:650] = 0.39  # not loud
    assert beep_onsets(wave, rate).tolist() == [0.3]
    wave[0:50] = 0.6
    assert beep_onsets(wave, rate).tolist() == [0.0, 0.3]  # a beep at the very start counts
    assert beep_onsets(np.zeros(100), rate).tolist() == []


def test_coded_video_describes_itself(talk):
    from faceexpr_cli.media.timeline import frame_times

    assert (talk.fps, talk.n_frames, talk.width, talk.height) == (25.0, 150, 192, 96)
    assert (talk.beep_every, talk.beep_length) == (1.0, 0.12)
    assert len(frame_times(talk.path)) == 150


def test_a_silent_coded_video_has_no_audio_and_its_codes(tmp_path):
    from faceexpr_cli.media import probe, read_frames

    v = make_coded_video(tmp_path / "silent.mp4", seconds=0.4, fps=10.0, width=96, height=48, audio=False)
    assert (v.path, v.fps, v.n_frames, v.width, v.height) == (tmp_path / "silent.mp4", 10.0, 4, 96, 48)
    info = probe(v.path)
    assert (info.width, info.height) == (96, 48) and not info.has_audio
    assert [read_code(f) for f in read_frames(v.path)] == [0, 1, 2, 3]
