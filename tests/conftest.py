"""The unit tests run torch on one CPU thread: their nets are small, and in CI they run beside the book
build, where a second thread spin-waits for a busy core instead of helping (bench/threads.py measures it)."""

import torch

torch.set_num_threads(1)
