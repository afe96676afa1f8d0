"""Dubbing and localisation: voice a subtitle cue sheet per language and fit it to the picture.

Modules, in pipeline order: ``cues`` (SRT/WebVTT → a typed cue sheet, with documented repairs),
``cast`` (speakers → voices per language), ``plan`` (slots in samples, validated before anything
runs), ``voicing`` (synthesise and fit each cue: ``fit`` decides, ``stretch`` and ``trim`` act),
``duck`` (the background's gain under speech), ``mix`` (streamed mix, master, dialogue stem),
``manifest`` and ``publish``; ``takes_qa`` (Whisper hears every take), ``video`` (ffmpeg probe,
demux, mux) and ``picture`` (the dubbed video of a programme); ``translate`` (optional cue sheet
translation). No Prefect here: ``tasks/dub.py`` and ``flows/dub_programme.py`` wrap it.
"""
