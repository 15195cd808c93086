from comem.cli import run

run()
