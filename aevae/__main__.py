from aevae.cli import main

raise SystemExit(main())
