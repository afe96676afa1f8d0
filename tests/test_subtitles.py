from castline.delivery.subtitles import Cue, to_srt, to_vtt


def test_srt_and_vtt_timings_come_from_samples():
    cues = [Cue(12_000, 60_012, "Harriet", "Hello & <welcome>."), Cue(72_000, 3_600 * 24_000 + 1, "Joe", "Hi.")]
    srt = to_srt(cues, 24_000)
    assert "1\n00:00:00,500 --> 00:00:02,501\nHarriet: Hello & <welcome>.\n" in srt
    assert "00:00:03,000 --> 01:00:00,000" in srt
    vtt = to_vtt(cues, 24_000)
    assert vtt.startswith("WEBVTT\n")
    assert "00:00:00.500 --> 00:00:02.501\n<v Harriet>Hello &amp; &lt;welcome&gt;." in vtt


def test_continuation_cues_do_not_repeat_the_speaker():
    cues = [Cue(0, 100, "Joe", "One.", True), Cue(200, 300, "Joe", "Two.", False)]
    srt = to_srt(cues, 1000)
    assert "Joe: One." in srt and "\nTwo.\n" in srt
