from bigmodel_core.cli import main

raise SystemExit(main())
