"""The steps of the conda release workflow; `dodo.py` declares them as doit tasks."""
