import sys

from bert_jax.main import main

sys.exit(main())
