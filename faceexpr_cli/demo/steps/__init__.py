"""Demo steps, one module per feature; each registers with ``@demo_step(name, title, order)``.

Orders: 10 sample media, 20 media cut, 30 crop, 40 clip, 50 train, 60 export, 65 extract, 70 animate, 72 speech,
75 swap.
"""
