from roast_tl.harness.cli import main

raise SystemExit(main())
