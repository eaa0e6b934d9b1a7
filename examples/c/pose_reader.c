/* Reads Recognizer's pose metadata and events from C: runs the whole chain
 *
 *   filesrc ! decodebin ! videoconvert ! queue ! rtmopose ! bytetrack ! queue ! stgcnclassify
 *     ! eventsink (fall events posted on the bus)
 *
 * on a video file and prints, per frame, the persons with their boxes, track ids, track states and
 * actions (read from the buffers reaching eventsink, through the public header
 * recognizer/pose-meta.h), and every event that eventsink posts on the bus.
 *
 * Usage: pose_reader VIDEO POSE_MODEL ACTION_MODEL
 *   e.g. pose_reader ../shared/media/video/ntu_S002C002P003R002A043_rgb_falling.avi \
 *          ../shared/models/pose/yolo11n-pose_rtmo-contract.onnx models/fall_stgcnpp.onnx
 * The plugin must be where GStreamer finds it (installed with meson, or GST_PLUGIN_PATH).
 * Built by meson (meson setup build && meson compile -C build pose_reader), or against the
 * installed header: cc pose_reader.c $(pkg-config --cflags --libs recognizer gstreamer-1.0).
 *
 * Output, one line each:
 *   frame N pts S.SSS inferred|skipped persons K: [#ID STATE [ACTION SCORE]] ...
 *   event TYPE: track ID, label L, score S, from S.SSS s to S.SSS s
 *   pose_reader: F frames, persons in P, T tracks, E events
 */
#include <gst/gst.h>
#include <recognizer/pose-meta.h>
#include <stdio.h>

typedef struct {
  guint frames;
  guint frames_with_persons;
  GHashTable *tracks;           /* track ids seen */
} Counts;

static double
seconds (GstClockTime t)
{
  return GST_CLOCK_TIME_IS_VALID (t) ? (double) t / GST_SECOND : -1.0;
}

/* Called in the streaming thread for every buffer entering eventsink. */
static GstPadProbeReturn
on_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Counts *counts = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  const RecognizerPoseMeta *meta = recognizer_buffer_get_pose_meta (buffer);
  GString *line = g_string_new (NULL);
  guint i;

  (void) pad;

  g_string_append_printf (line, "frame %u pts %.3f", counts->frames,
      seconds (GST_BUFFER_PTS (buffer)));
  if (meta == NULL) {
    /* No meta of this header's layout: nothing was looked for on this buffer. */
    g_string_append (line, " no pose meta");
  } else {
    g_string_append_printf (line, " %s persons %u:",
        recognizer_pose_meta_is_inferred (meta) ? "inferred" : "skipped",
        meta->n_persons);
    for (i = 0; i < meta->n_persons; i++) {
      const RecognizerPerson *p = recognizer_pose_meta_get_person (meta, i);
      if (recognizer_person_has_track (p)) {
        g_string_append_printf (line, " #%" G_GUINT64_FORMAT " %s", p->track_id,
            recognizer_person_get_track_state_name (p));
        g_hash_table_add (counts->tracks, g_memdup2 (&p->track_id, sizeof p->track_id));
      } else {
        g_string_append (line, " untracked");
      }
      g_string_append_printf (line, " box [%.0f %.0f %.0f %.0f] score %.2f%s", p->bbox[0],
          p->bbox[1], p->bbox[2], p->bbox[3], p->score,
          recognizer_person_is_predicted (p) ? " predicted" : "");
      if (recognizer_person_has_action (p))
        g_string_append_printf (line, " action %s %.2f",
            recognizer_person_get_action_label (p), p->action_score);
      if (i + 1 < meta->n_persons)
        g_string_append (line, ";");
    }
    if (meta->n_persons > 0)
      counts->frames_with_persons++;
  }
  counts->frames++;
  printf ("%s\n", line->str);
  fflush (stdout);
  g_string_free (line, TRUE);
  return GST_PAD_PROBE_OK;
}

/* An event of eventsink: an element message named "recognizer-event" (README "eventsink"). */
static void
print_event (const GstStructure * s)
{
  guint64 track_id = 0, start = GST_CLOCK_TIME_NONE, end = GST_CLOCK_TIME_NONE;
  gdouble score = 0.0;

  gst_structure_get_uint64 (s, "track-id", &track_id);
  gst_structure_get_uint64 (s, "start-pts", &start);
  gst_structure_get_uint64 (s, "end-pts", &end);
  gst_structure_get_double (s, "score", &score);
  printf ("event %s: track %" G_GUINT64_FORMAT ", label %s, score %.2f, from %.3f s to %.3f s\n",
      gst_structure_get_string (s, "type"), track_id, gst_structure_get_string (s, "label"),
      score, seconds (start), seconds (end));
  fflush (stdout);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  GstElement *pipeline, *sink;
  GstPad *pad;
  GstBus *bus;
  Counts counts = { 0 };
  guint events = 0;
  gboolean ok = FALSE, done = FALSE;
  gchar *description;

  gst_init (&argc, &argv);
  if (argc != 4) {
    fprintf (stderr, "usage: %s VIDEO POSE_MODEL ACTION_MODEL\n", argv[0]);
    return 2;
  }
  /* The meta API type, before the plugin is loaded (the header registers it when needed). */
  if (recognizer_pose_meta_api_get_type () == 0) {
    fprintf (stderr, "pose_reader: could not register %s\n", RECOGNIZER_POSE_META_API_NAME);
    return 1;
  }

  /* The chain of pipelines/file-to-events.pipeline, without the recording. */
  description = g_strdup_printf ("filesrc location=\"%s\" ! decodebin ! videoconvert ! "
      "queue max-size-buffers=4 ! rtmopose model-file=\"%s\" score-threshold=0.1 ! bytetrack ! "
      "queue max-size-buffers=4 ! stgcnclassify model-file=\"%s\" ! "
      "eventsink name=sink stream=cam0 labels=fall label-match=contains event-type=fall "
      "min-frames=3 post-messages=true", argv[1], argv[2], argv[3]);
  pipeline = gst_parse_launch (description, &error);
  g_free (description);
  if (pipeline == NULL) {
    fprintf (stderr, "pose_reader: %s\n", error->message);
    g_clear_error (&error);
    return 1;
  }

  counts.tracks = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &counts, NULL);
  gst_object_unref (pad);
  gst_object_unref (sink);

  bus = gst_element_get_bus (pipeline);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    fprintf (stderr, "pose_reader: the pipeline did not start\n");
  while (!done) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
        GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_ELEMENT);
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_ELEMENT:{
        const GstStructure *s = gst_message_get_structure (msg);
        if (s != NULL && gst_structure_has_name (s, "recognizer-event")) {
          print_event (s);
          events++;
        }
        break;
      }
      case GST_MESSAGE_WARNING:{
        gchar *debug = NULL;
        gst_message_parse_warning (msg, &error, &debug);
        fprintf (stderr, "pose_reader: warning from %s: %s\n", GST_OBJECT_NAME (msg->src),
            error->message);
        g_clear_error (&error);
        g_free (debug);
        break;
      }
      case GST_MESSAGE_ERROR:{
        gchar *debug = NULL;
        gst_message_parse_error (msg, &error, &debug);
        fprintf (stderr, "pose_reader: error from %s: %s\n%s\n", GST_OBJECT_NAME (msg->src),
            error->message, debug ? debug : "");
        g_clear_error (&error);
        g_free (debug);
        done = TRUE;
        break;
      }
      case GST_MESSAGE_EOS:
        ok = TRUE;
        done = TRUE;
        break;
      default:
        break;
    }
    gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);

  printf ("pose_reader: %u frames, persons in %u, %u tracks, %u events\n", counts.frames,
      counts.frames_with_persons, g_hash_table_size (counts.tracks), events);
  g_hash_table_unref (counts.tracks);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return ok ? 0 : 1;
}
