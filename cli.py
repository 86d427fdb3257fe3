"""Run the zsl-cl command line from a source checkout: ``python cli.py evaluate ...``.

The real CLI is ``zsl_cl/cli.py``; this file is not installed, so no module
called ``cli`` lands in site-packages.
"""

from zsl_cl.cli import main

if __name__ == "__main__":
    main()
