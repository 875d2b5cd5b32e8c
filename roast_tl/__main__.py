from roast_tl.cli import main

raise SystemExit(main())
