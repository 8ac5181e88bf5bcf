"""The results page ``docs/results.md`` and the README's results block, from the metrics (the
``report`` stage).

Everything on the page comes from ``metrics/`` (the headline files and their ``details/``), so
the page is regenerated whenever a number changes and never holds a number typed by hand. One
module per part: ``tables`` (reading a record, formatting a figure), ``claims`` (the claims at a
glance), ``auc``, ``head_weights``, ``causal`` and ``debias`` (one section each), ``page`` (the
page, the README block and the command line)::

    python -m kuairec_utils.report --metrics metrics --reports reports --page docs/results.md \
        --figures docs/figures --readme README.md
"""
