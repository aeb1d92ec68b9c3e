"""Video-site downloads through yt-dlp's generic extractor against a loopback page with a video and captions."""

from __future__ import annotations

import pytest
from dlhelpers import fast_options, leftovers, write_csv
from faultserver import Route

from faceexpr_cli.download.options import VideoOptions
from faceexpr_cli.download.runner import download_manifest
from faceexpr_cli.download.sources.ytdlp import classify, format_selector

VTT = (
    b"WEBVTT\nKind: captions\nLanguage: en\n\n"
    b"00:00:00.200 --> 00:00:01.400\nplease<00:00:00.600><c> smile</c><00:00:01.000><c> now</c>\n\n"
    b"00:00:01.400 --> 00:00:02.000\nlook<00:00:01.700><c> surprised</c>\n"
)
PAGE = (
    b'<html><head><title>talk</title></head><body><video controls>'
    b'<source src="/media/talk.mp4" type="video/mp4">'
    b'<track kind="captions" src="/media/talk.en.vtt" srclang="en" label="English"></video></body></html>'
)


@pytest.fixture(scope="module")
def talk_video(tmp_path_factory):
    from faceexpr_cli.samples import make_talking_head

    return make_talking_head(tmp_path_factory.mktemp("yt") / "talk.mp4", seconds=2.0, width=160, height=128).path


def _site(server, video):
    server.add("/media/talk.mp4", Route(file=video, content_type="video/mp4"))
    server.add("/media/talk.en.vtt", Route(data=VTT, content_type="text/vtt"))
    server.add("/watch", Route(data=PAGE, content_type="text/html"))


def test_video_and_captions_land_side_by_side(server, tmp_path, talk_video):
    from faceexpr_cli.media import probe

    _site(server, talk_video)
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/watch"), "id": "talk01", "source": "ytdlp"}])
    out = tmp_path / "out"
    rec = download_manifest(manifest, out, fast_options(), progress=False).records[0]
    assert rec["status"] == "ok", rec
    assert rec["files"] == ["talk01.mp4", "talk01.en.vtt"] and rec["source"] == "ytdlp"
    assert (out / "talk01.en.vtt").read_bytes() == VTT  # word timings kept as served
    assert abs(probe(out / "talk01.mp4").duration - 2.0) < 0.1
    assert leftovers(out) == []


def test_sections_fetch_only_the_spans(server, tmp_path, talk_video):
    from faceexpr_cli.media import probe

    _site(server, talk_video)
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/watch"), "id": "talk01", "spans": "0.4-1.4"}])
    opts = fast_options(source="ytdlp", video=VideoOptions(sections=True, subtitles=False))
    rec = download_manifest(manifest, tmp_path / "out", opts, progress=False).records[0]
    assert rec["status"] == "ok", rec
    assert rec["files"] == ["talk01_0.4-1.4.mp4"]
    assert abs(probe(tmp_path / "out" / rec["files"][0]).duration - 1.0) < 0.1


def test_missing_page_is_a_permanent_failure_with_nothing_left(server, tmp_path):
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/gone"), "id": "gone"}])
    rec = download_manifest(manifest, tmp_path / "out", fast_options(source="ytdlp"), progress=False).records[0]
    assert rec["status"] == "failed" and rec["error_class"] == "http_404" and rec["attempts"] == 1
    assert leftovers(tmp_path / "out") == []


def test_format_selection_and_error_classes():
    assert format_selector(VideoOptions()) == "bv*+ba/b"
    sel = format_selector(VideoOptions(min_height=720, codec="h264"))
    assert sel == "bv*[height>=?720][vcodec~='^avc1']+ba/b[height>=?720][vcodec~='^avc1']"
    assert format_selector(VideoOptions(format="18")) == "18"
    from yt_dlp.utils import DownloadError, ExtractorError

    private = DownloadError("ERROR: [youtube] abc: Private video. Sign in if you've been granted access")
    assert classify(private, "u").kind == "private_video" and not classify(private, "u").transient
    assert classify(DownloadError("ERROR: HTTP Error 429: Too Many Requests"), "u").transient
    wrapped = DownloadError("ERROR: boom", exc_info=(ExtractorError, ExtractorError("x", expected=True), None))
    assert classify(wrapped, "u").kind == "ytdlp_error"


def test_site_options_reach_yt_dlp(tmp_path):
    from faceexpr_cli.download.items import Item
    from faceexpr_cli.download.limits import Meter
    from faceexpr_cli.download.sources import FetchJob, pick_source
    from faceexpr_cli.download.sources.ytdlp import ydl_options

    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    video = VideoOptions(min_height=360, codec="vp9", cookies=cookies, sleep=1.5, rate_limit=2e6,
                         sub_langs=["en", "de"], sections=True)
    item = Item(key="abc", url="https://www.youtube.com/watch?v=abc", name="abc", spans=[(1.0, 2.0), (5.0, 6.5)])
    job = FetchJob(item, tmp_path / "abc.part", Meter(), fast_options(video=video))
    opts = ydl_options(job, fast_options(video=video), print, tmp_path / "copy.txt")
    assert opts["format"] == "bv*[height>=?360][vcodec~='^vp0?9']+ba/b[height>=?360][vcodec~='^vp0?9']"
    assert opts["cookiefile"] == str(tmp_path / "copy.txt") and opts["sleep_interval"] == 1.5 and opts["ratelimit"] == 2e6
    assert "cookiefile" not in ydl_options(job, fast_options(video=video), print)  # never the user's own file
    assert opts["subtitleslangs"] == ["en", "de"] and opts["writeautomaticsub"] and opts["subtitlesformat"].startswith("vtt")
    assert opts["outtmpl"]["default"].endswith("abc_%(section_start)s-%(section_end)s.%(ext)s")
    assert opts["outtmpl"]["subtitle"].endswith("abc.%(ext)s")
    assert list(opts["download_ranges"]({}, None)) == [{"start_time": 1.0, "end_time": 2.0}, {"start_time": 5.0, "end_time": 6.5}]
    assert pick_source(item) == "ytdlp" and pick_source(Item(key="f", url="https://cdn.example/f.mp4", name="f")) == "http"


def test_cookies_file_is_never_rewritten_and_names_get_one_extension(server, tmp_path, talk_video):
    import os

    _site(server, talk_video)
    cookies = tmp_path / "cookies.txt"
    original = b"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t2147483647\tsession\tabc123\n"
    cookies.write_bytes(original)
    os.utime(cookies, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    # a direct media URL: the row's name is "talk.mp4", and yt-dlp must not make it talk.mp4.mp4
    manifest = write_csv(tmp_path / "m.csv", [{"url": server.url("/media/talk.mp4")}])
    out = tmp_path / "out"
    opts = fast_options(source="ytdlp", video=VideoOptions(cookies=cookies, subtitles=False))
    rec = download_manifest(manifest, out, opts, progress=False).records[0]
    assert rec["status"] == "ok", rec
    assert rec["files"] == ["talk.mp4"] and sorted(p.name for p in out.glob("talk*")) == ["talk.mp4"]
    assert (out / "talk.mp4").read_bytes() == talk_video.read_bytes()
    assert any(h.cookie == "session=abc123" for h in server.hits_for("/media/talk.mp4"))  # the copy was used
    assert cookies.read_bytes() == original and cookies.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert leftovers(out) == []
