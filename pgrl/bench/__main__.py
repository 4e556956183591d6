import sys

from pgrl.bench import main

sys.exit(main())
