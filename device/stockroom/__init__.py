"""Stockroom mode (classify-cam --events): a fixed camera over a table, one record per garment.

    tracker.py  frames in, `placed` and `removed` events out: the table's state machine
    step.py     the loop's step in this mode: the tracker, item photos, the MQTT queue
    mqtt.py     store and forward to a broker: the queue on disk, the sender, retained tally and status
    tally.py    stockroom-tally: the counts of every device under one MQTT prefix
"""
