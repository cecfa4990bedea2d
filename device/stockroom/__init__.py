"""Stockroom mode (classify-cam --events): a fixed camera over a table, one record per garment.

    tracker.py  frames in, `placed` and `removed` events out: the table's state machine
    step.py     the loop's step in this mode: the tracker, item photos, the MQTT queue, corrections
    items.py    this run's items for the page, and a correction (relabel) of one
    queue.py    events on disk until the broker has them: one run per folder, written whole
    mqtt.py     store and forward to a broker: the link, the sender, retained tally, status and claim
    url.py      a --mqtt URL as a Broker; why a broker cannot be reached, in words
    tally.py    stockroom-tally: the counts of every device under one MQTT prefix
"""
