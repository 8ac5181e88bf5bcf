"""``python -m kuairec_utils.report``: the report stage (``page.main``)."""

from kuairec_utils.report.page import main

raise SystemExit(main())
