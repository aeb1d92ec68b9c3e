from faceexpr_cli.cli.app import run

run()
