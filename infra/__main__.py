from infra.app import main

raise SystemExit(main())
