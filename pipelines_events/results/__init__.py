"""The results storage: the interface, the event-log and in-memory storages, the helpers."""
