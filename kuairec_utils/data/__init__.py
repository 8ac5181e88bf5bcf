"""The data step: the validated reader of the seven KuaiRec 2.0 files (``kuairec``), sessions,
bursts and the calendar-day split (``sessions``), and 01_data's interaction table (``dataset``)."""
