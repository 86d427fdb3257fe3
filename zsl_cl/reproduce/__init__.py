"""``zsl-cl reproduce``: the study's tables and figures on its static R0 and R1 splits.

One module per output:

- ``draws``: train the backbone once per seed, then evaluate independent reference draws;
- ``table``: the five mappings as mean ± std over draws (``table1.json``);
- ``confusion``: per-class top-1 assignments in the Ω→Ω mapping, ranked by share;
- ``sensitivity``: best, median and worst reference draw per unseen class, and accuracy against shots;
- ``decoding``, ``reconstruction``, ``interpolation``: the decoder figures;
- ``job``: the whole command, from request to files.
"""
