"""Keep the build log to what a reader needs (a local Sphinx extension, listed in _config.yml).

myst-parser and myst-nb each log their whole parser configuration (hundreds of characters of
settings) at the start of every build; this drops those two messages. Each chapter's "Executing
notebook" and "Executed notebook in N seconds" lines stay. The kernels' warning about unencrypted
local TCP is silenced by the Makefile (an IPython profile under _build, kernel log level ERROR).
"""

import logging


class _DropConfigDump(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not ("myst v" in msg or "myst-nb v" in msg) or "ParserConfig" not in str(record.args)


def setup(app):
    for name in ("sphinx.myst_parser.sphinx_ext.main", "sphinx.myst_nb.sphinx_ext"):
        logging.getLogger(name).addFilter(_DropConfigDump())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
