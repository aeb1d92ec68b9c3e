"""`fx download`: fetch a manifest of files/videos (`fx download MANIFEST --out DEST`) or a card's weights
(`fx download weights NAME`).

Both forms live in one Typer group: the group's class routes any first argument that is not a sub-command name
to the `fetch` command, so `fx download urls.txt --out data/` and `fx download fetch urls.txt --out data/` are
the same, while `fx download weights ...` and `fx download --help` behave as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from faceexpr_cli.cli.options import (
    ExecutorOpt,
    JsonOpt,
    RayAddressOpt,
    ShardSizeOpt,
    WorkersOpt,
    executor_spec,
)


class _FetchByDefault(TyperGroup):
    def parse_args(self, ctx, args):  # noqa: ANN001 - Click's signature
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", *ctx.help_option_names):
            args = ["fetch", *args]
        return super().parse_args(ctx, args)


download_app = typer.Typer(
    cls=_FetchByDefault,
    no_args_is_help=True,
    help="Resumable, verified downloads of source videos, files and model weights.\n\n"
    "fx download MANIFEST --out DEST is short for fx download fetch MANIFEST --out DEST.\n\n"
    "Examples: [cyan]fx download urls.txt --out data/raw[/], [cyan]fx download weights dinov2-vits14[/], "
    "[cyan]fx download weights --list[/]",
)

_VIDEO = "Video sites (yt-dlp)"
_NET = "Network"


@download_app.command("fetch")
def fetch(
    manifest: Annotated[Path, typer.Argument(help="A .txt of URLs or video ids, or a CSV/TSV/Parquet/JSONL with a url column.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Destination: a directory or a bucket URL (s3://..., gs://...).")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Concurrent downloads.", rich_help_panel=_NET)] = 16,
    per_host: Annotated[int, typer.Option("--per-host", min=1, help="Concurrent downloads per host.", rich_help_panel=_NET)] = 8,
    limit_rate: Annotated[str | None, typer.Option("--limit-rate", help="Bandwidth cap for the run, e.g. 20M (bytes/s).", rich_help_panel=_NET)] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries per item for transient errors.", rich_help_panel=_NET)] = 4,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds without data before a transfer counts as stalled.", rich_help_panel=_NET)] = 30.0,
    source: Annotated[str | None, typer.Option("--source", help="Force a source for every row: http, fsspec or ytdlp.")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="I/N: fetch only shard I (0-based) of N, for N machines.")] = None,
    storage_option: Annotated[list[str] | None, typer.Option("--storage-option", help="fsspec option PROTOCOL.KEY=VALUE, e.g. s3.endpoint_url=http://... (repeatable).")] = None,
    staging: Annotated[Path | None, typer.Option("--staging", help="Local directory for .part files when DEST is a bucket.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even what the status manifest lists as done.")] = False,
    checksum: Annotated[bool, typer.Option("--checksum/--no-checksum", help="Record every file's sha256 (rows that give a sha256 are always verified).")] = True,
    id_url: Annotated[str, typer.Option("--id-url", help="URL template for bare video ids.")] = "https://www.youtube.com/watch?v={id}",
    min_height: Annotated[int | None, typer.Option("--min-height", help="Smallest video height to accept.", rich_help_panel=_VIDEO)] = None,
    codec: Annotated[str | None, typer.Option("--codec", help="Video codec: h264, hevc, vp9 or av1.", rich_help_panel=_VIDEO)] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="A raw yt-dlp format string (wins over --min-height/--codec).", rich_help_panel=_VIDEO)] = None,
    cookies: Annotated[Path | None, typer.Option("--cookies", exists=True, dir_okay=False, help="Netscape cookies file.", rich_help_panel=_VIDEO)] = None,
    sleep: Annotated[float, typer.Option("--sleep", help="Seconds to sleep between requests to a site.", rich_help_panel=_VIDEO)] = 0.0,
    video_rate: Annotated[str | None, typer.Option("--video-rate", help="Per-video rate limit, e.g. 5M.", rich_help_panel=_VIDEO)] = None,
    subs: Annotated[bool, typer.Option("--subs/--no-subs", help="Save subtitles and automatic captions (VTT, with word timings) next to each video.", rich_help_panel=_VIDEO)] = True,
    sub_langs: Annotated[str, typer.Option("--sub-langs", help="Comma-separated subtitle languages (regexes), or 'all'.", rich_help_panel=_VIDEO)] = "en.*",
    sections: Annotated[bool, typer.Option("--sections", help="Fetch only each row's spans (spans column, e.g. '12-20;40.5-48').", rich_help_panel=_VIDEO)] = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 1,
    shard_size: ShardSizeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Download every row of a manifest into DEST, resumably and verified; a re-run skips what is done.

    Writes each file under a .part name and renames it only when complete and verified (size, sha256 if given);
    records every row in DEST/fx-download.jsonl and .parquet (ok, skipped or failed, with the reason).

    Examples:
      [cyan]fx download urls.txt --out data/raw[/]
      [cyan]fx download videos.csv --out s3://bucket/raw --min-height 720 --codec h264 --sections[/]
      [cyan]fx download manifest.parquet --out data/ --shard 3/8 --limit-rate 50M[/]
      [cyan]fx download urls.txt --out s3://bucket/raw --executor ray --ray-address auto[/]
    """
    from faceexpr_cli.console import err, print_json
    from faceexpr_cli.download.options import (
        DownloadOptions,
        VideoOptions,
        parse_shard,
        parse_size,
        parse_storage_options,
    )
    from faceexpr_cli.download.report import print_summary
    from faceexpr_cli.download.retry import RetryPolicy
    from faceexpr_cli.download.runner import download_manifest
    from faceexpr_cli.errors import BatchFailures, Interrupted

    video = VideoOptions(min_height=min_height, codec=codec, format=fmt, cookies=cookies, sleep=sleep,
                         rate_limit=parse_size(video_rate) if video_rate else None, subtitles=subs,
                         sub_langs=[s.strip() for s in sub_langs.split(",") if s.strip()], sections=sections)
    options = DownloadOptions(
        jobs=jobs, per_host=per_host, rate_limit=parse_size(limit_rate) if limit_rate else None,
        retry=RetryPolicy(attempts=retries + 1), timeout=timeout, source=source,
        shard=parse_shard(shard) if shard else None, storage_options=parse_storage_options(storage_option or []),
        staging=staging, force=force, checksum=checksum, video=video,
    )
    if source is not None:
        from faceexpr_cli.download.sources import SOURCES

        SOURCES.get(source)  # an unknown name is a usage error before anything starts
    spec = executor_spec(executor, ray_address, workers, shard_size)
    if not spec.distributed and workers > 1:
        from faceexpr_cli.errors import UsageError

        raise UsageError("fx download runs --jobs transfers in this process; --workers N needs --executor ray")
    on = {"executor": spec} if spec.distributed else {}  # a local run is called as it always was
    try:
        result = download_manifest(manifest, out, options, id_url=id_url, **on)
    except KeyboardInterrupt as exc:  # the status of what finished is written; one line, exit 130
        raise Interrupted(exc.one_line() if hasattr(exc, "one_line") else "interrupted") from None
    if json_out:
        print_json({**result.summary(), "failures": result.failed})
    else:
        print_summary(result)
    if result.failed:
        status = result.status_files[-1] if result.status_files else None
        transient = sum(1 for r in result.failed if r.get("transient"))
        if transient:  # only these may succeed on a re-run; 404s and bad rows need the manifest or server fixed
            err.print(f"re-run the same command to retry the {transient} item(s) that failed transiently")
        if transient < len(result.failed):
            err.print(f"{len(result.failed) - transient} item(s) failed for good (see error_class); "
                      "fix their rows or sources")
        raise BatchFailures(len(result.failed), len(result.records), status)


@download_app.command("weights")
def weights(
    name: Annotated[str | None, typer.Argument(help="Model card name (see `fx models list`).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="Show which cards' weights are cached and which are missing.")] = False,
    source: Annotated[str | None, typer.Option("--source", help="Only this weight source of the card (default: all).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached and verified.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Download a model card's weights into the cache, verify the sha256, show the licence, print the path.

    Weights that only a person can fetch (a Google Drive folder, ...) are not downloaded: fx prints where to get
    the file and the exact path to put it at, and exits 1 until the file is there.

    Examples: [cyan]fx download weights dinov2-vits14[/], [cyan]fx download weights --list[/]
    """
    from faceexpr_cli.console import err, out, print_json, print_table
    from faceexpr_cli.download.weights import download_weights, list_weights
    from faceexpr_cli.errors import Interrupted, UsageError, WeightsNotFoundError

    if list_:
        rows = list_weights()
        if json_out:
            print_json(rows)
        else:
            print_table(rows, ["card", "source", "status", "size", "licence", "path"], title="model weights")
        return
    if not name:
        raise UsageError("give a model card name, or --list", "e.g. fx download weights NAME; see fx models list")
    try:
        results = download_weights(name, source=source, force=force)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: the partial download is kept and resumes on the next run") from None
    manual = [r for r in results if r.status == "manual"]
    for res in results:
        if res.status == "manual":
            why = ("the file at its path is not the card's file (size or sha256 differ)" if Path(res.path).exists()
                   else "its site needs a browser, so a person has to fetch it")
            err.print(f"{res.card}/{res.source}: not downloaded: {why}", highlight=False, soft_wrap=True)
            err.print(f"  get it from: {res.url}\n  file name:   {Path(res.path).name}\n  put it at:   {res.path}",
                      highlight=False, soft_wrap=True)
            if res.note:
                err.print(f"  note: {res.note}", highlight=False, soft_wrap=True)
        elif res.status == "packaged":
            err.print(f"{res.card}/{res.source}: ships in an installed package, nothing to download")
        else:
            verb = "already cached" if res.status == "cached" else "downloaded"
            check = "sha256 verified" if res.verified else "no sha256 in the card: not verified"
            err.print(f"{res.card}/{res.source}: {verb}, {check}")
        err.print(f"licence: {res.licence}" + (f" ({res.note})" if res.note and res.status != "manual" else ""),
                  highlight=False, soft_wrap=True)
    if json_out:
        print_json([r.to_dict() for r in results])
    else:
        for res in results:
            if res.status != "manual":
                out.print(res.path, highlight=False, soft_wrap=True)
    if manual:
        first = manual[0]
        others = f" (and {len(manual) - 1} more above)" if len(manual) > 1 else ""
        raise WeightsNotFoundError(f"weights '{first.source}' for '{first.card}' must be fetched by hand{others}",
                                   f"put {Path(first.path).name} at {first.path}, as above")


def register(app: typer.Typer) -> None:
    app.add_typer(download_app, name="download")
