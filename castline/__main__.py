from castline.cli import main

raise SystemExit(main())
