"""The program: `python -m convcalc`, and the `convcalc` script (pyproject.toml).

Ctrl-C and a reader that goes away (`convcalc net resnet152 | head -1`) end convcalc as
they end any Unix tool: at once, killed by the signal, printing nothing; the shell shows
status 130 or 141. Python would raise KeyboardInterrupt or BrokenPipeError instead,
wherever it happens to be, the imports that take most of a short run included; so the
signals get their default action before anything else. (`cli.main`, which tests call
in their own process, leaves the signals alone.)
"""

import signal


def run() -> None:
    # Unless started with Ctrl-C ignored (`nohup`, `&` in a script), which stays so.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    if hasattr(signal, "SIGPIPE"):  # not on Windows
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    from convcalc.cli import main

    main()


if __name__ == "__main__":
    run()
