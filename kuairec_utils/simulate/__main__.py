"""``python -m kuairec_utils.simulate --out DIR [--scale S] [--seed N]``: write a simulated release."""

from kuairec_utils.simulate import main

raise SystemExit(main())
