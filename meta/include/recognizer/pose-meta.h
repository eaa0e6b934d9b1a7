/* Recognizer pose metadata: the C view of the GstMeta that the Recognizer elements (rtmopose,
 * bytetrack, stgcnclassify) attach to video buffers. Header-only; needs gstreamer-1.0.
 *
 *   #include <recognizer/pose-meta.h>
 *
 *   const RecognizerPoseMeta *meta = recognizer_buffer_get_pose_meta (buffer);
 *   if (meta) {
 *     for (guint i = 0; i < meta->n_persons; i++) {
 *       const RecognizerPerson *p = recognizer_pose_meta_get_person (meta, i);
 *       if (recognizer_person_has_track (p))
 *         g_print ("track %" G_GUINT64_FORMAT " action %s fall %.2f\n", p->track_id,
 *             recognizer_person_get_action_label (p),
 *             recognizer_person_get_class_score (p, "fall", -1.0f));
 *     }
 *   }
 *
 * Layout and versions. The Rust crate recognizer-meta (meta/src/ffi.rs, meta/src/person.rs)
 * writes exactly these structs; its test `c_header` compiles static_asserts on every size and
 * offset below against the Rust layout. RECOGNIZER_POSE_META_VERSION changes whenever the layout
 * does. Fields are only appended to RecognizerPerson, and the meta's `person_size` is the stride
 * of the `persons` array, so recognizer_buffer_get_pose_meta() accepts any meta whose version is
 * at least this header's and whose person_size is at least sizeof (RecognizerPerson), and
 * returns NULL for an older or unknown layout. Always step through the persons with
 * recognizer_pose_meta_get_person(), never `meta->persons[i]`.
 *
 * Coordinates are pixels of the buffer the meta is attached to (videoscale rescales them; other
 * geometry changes such as videoflip or videocrop drop the meta). A buffer that passed rtmopose
 * always carries the meta: the flag RECOGNIZER_POSE_META_INFERRED says whether the pose model ran
 * on the frame (without it, persons were predicted by bytetrack or none were looked for).
 *
 * The meta API type. The plugin registers the API type "RecognizerPoseMetaAPI" when it loads;
 * recognizer_pose_meta_api_get_type() finds it by name or registers it itself, with the same
 * tags ("video", "size"), so that it works before the plugin is loaded (the plugin then finds
 * this registration by name). Call it once from the main thread before starting pipelines, as
 * with any GType. Reading needs only the API type; adding the meta needs the plugin (its
 * implementation "RecognizerPoseMeta" owns the init, free and transform functions).
 */
#ifndef RECOGNIZER_POSE_META_H
#define RECOGNIZER_POSE_META_H

#include <gst/gst.h>

G_BEGIN_DECLS

/* Layout version written into RecognizerPoseMeta.version by the writer.
 * 1: first layout (had no version field). 2: version, person_size, class scores. */
#define RECOGNIZER_POSE_META_VERSION 2

#define RECOGNIZER_POSE_META_API_NAME "RecognizerPoseMetaAPI"
#define RECOGNIZER_POSE_META_IMPL_NAME "RecognizerPoseMeta"

/* Keypoints per person, in COCO-17 order (nose, left_eye, right_eye, left_ear, right_ear,
 * left_shoulder, right_shoulder, left_elbow, right_elbow, left_wrist, right_wrist, left_hip,
 * right_hip, left_knee, right_knee, left_ankle, right_ankle). */
#define RECOGNIZER_NUM_KEYPOINTS 17

/* Most class probabilities a person holds. A fixed array inside the person (not a pointer) keeps
 * a person a plain value that is copied with a memcpy; a classifier with more classes keeps its
 * most probable ones and sets RECOGNIZER_PERSON_SCORES_TRUNCATED. */
#define RECOGNIZER_MAX_CLASS_SCORES 32

/* RecognizerPoseMeta.flags */
#define RECOGNIZER_POSE_META_INFERRED (1u << 0) /* the pose model ran on this frame */

/* RecognizerPerson.flags */
#define RECOGNIZER_PERSON_PREDICTED (1u << 0)        /* box and keypoints predicted by the tracker */
#define RECOGNIZER_PERSON_SCORES_TRUNCATED (1u << 1) /* more classes than RECOGNIZER_MAX_CLASS_SCORES */

/* RecognizerPerson.track_state */
#define RECOGNIZER_TRACK_NONE 0u
#define RECOGNIZER_TRACK_NEW 1u
#define RECOGNIZER_TRACK_TRACKED 2u
#define RECOGNIZER_TRACK_LOST 3u

typedef struct {
  gfloat x, y;  /* pixels */
  gfloat score; /* 0 to 1 */
} RecognizerKeypoint;

typedef struct {
  GQuark label;     /* class label (g_quark_to_string) */
  guint32 class_id; /* index among the classifier's classes */
  gfloat score;     /* probability, 0 to 1 */
} RecognizerClassScore;

typedef struct {
  gfloat bbox[4]; /* x1, y1, x2, y2 in pixels */
  gfloat score;   /* detection score */
  RecognizerKeypoint keypoints[RECOGNIZER_NUM_KEYPOINTS];
  guint32 flags; /* RECOGNIZER_PERSON_* */
  /* (4 bytes of natural padding) */
  guint64 track_id;     /* 0: no track */
  guint32 track_state;  /* RECOGNIZER_TRACK_* */
  guint32 track_age;    /* frames since the track started */
  GQuark action_label;  /* 0: no action */
  guint32 action_class_id;
  gfloat action_score;
  guint32 action_window;         /* frames in the classified window */
  guint64 action_window_end_pts; /* GST_CLOCK_TIME_NONE when unknown */
  guint32 n_scores;              /* valid entries of scores; 0: not classified */
  guint32 reserved;              /* 0 */
  /* probabilities of the latest classification, in class order (by probability when
   * truncated); set even when the action was dropped by stgcnclassify's score-threshold */
  RecognizerClassScore scores[RECOGNIZER_MAX_CLASS_SCORES];
} RecognizerPerson;

typedef struct {
  GstMeta meta;
  guint32 version;     /* RECOGNIZER_POSE_META_VERSION of the writer */
  guint32 person_size; /* sizeof (RecognizerPerson) of the writer: stride of persons */
  guint32 flags;       /* RECOGNIZER_POSE_META_* */
  guint32 n_persons;
  RecognizerPerson *persons; /* n_persons entries, person_size bytes apart; owned by the meta */
} RecognizerPoseMeta;

/* The meta API type: found by name, or registered here (idempotent, and interchangeable with the
 * plugin's registration). 0 only if GStreamer refuses the registration. */
static inline GType
recognizer_pose_meta_api_get_type (void)
{
  static GType type = 0;
  if (type == 0) {
    GType t = g_type_from_name (RECOGNIZER_POSE_META_API_NAME);
    if (t == 0) {
      static const gchar *tags[] = { "video", "size", NULL };
      t = gst_meta_api_type_register (RECOGNIZER_POSE_META_API_NAME, tags);
      if (t == 0) /* registered by another thread meanwhile */
        t = g_type_from_name (RECOGNIZER_POSE_META_API_NAME);
    }
    type = t;
  }
  return type;
}

#define RECOGNIZER_POSE_META_API_TYPE (recognizer_pose_meta_api_get_type ())

/* TRUE when this header can read the meta: same or newer version, persons at least as large. */
static inline gboolean
recognizer_pose_meta_is_compatible (const RecognizerPoseMeta * meta)
{
  return meta != NULL && meta->version >= RECOGNIZER_POSE_META_VERSION
      && meta->person_size >= sizeof (RecognizerPerson);
}

/* The buffer's pose meta, or NULL when it has none or one of an incompatible layout. */
static inline const RecognizerPoseMeta *
recognizer_buffer_get_pose_meta (GstBuffer * buffer)
{
  GType api = recognizer_pose_meta_api_get_type ();
  const RecognizerPoseMeta *meta;
  if (api == 0)
    return NULL;
  meta = (const RecognizerPoseMeta *) gst_buffer_get_meta (buffer, api);
  return recognizer_pose_meta_is_compatible (meta) ? meta : NULL;
}

/* Whether the pose model ran on this frame. */
#define recognizer_pose_meta_is_inferred(m) \
  ((((const RecognizerPoseMeta *) (m))->flags & RECOGNIZER_POSE_META_INFERRED) != 0)

/* Person i (< n_persons), stepping by the writer's person_size. */
static inline const RecognizerPerson *
recognizer_pose_meta_get_person (const RecognizerPoseMeta * meta, guint i)
{
  g_return_val_if_fail (i < meta->n_persons, NULL);
  return (const RecognizerPerson *) ((const guint8 *) meta->persons +
      (gsize) i * meta->person_size);
}

#define recognizer_person_is_predicted(p) \
  ((((const RecognizerPerson *) (p))->flags & RECOGNIZER_PERSON_PREDICTED) != 0)
#define recognizer_person_has_track(p) (((const RecognizerPerson *) (p))->track_id != 0)
#define recognizer_person_has_action(p) (((const RecognizerPerson *) (p))->action_label != 0)

/* "none", "new", "tracked" or "lost". */
static inline const gchar *
recognizer_person_get_track_state_name (const RecognizerPerson * p)
{
  switch (p->track_state) {
    case RECOGNIZER_TRACK_NEW:
      return "new";
    case RECOGNIZER_TRACK_TRACKED:
      return "tracked";
    case RECOGNIZER_TRACK_LOST:
      return "lost";
    default:
      return "none";
  }
}

/* The action's label, or NULL without an action. */
static inline const gchar *
recognizer_person_get_action_label (const RecognizerPerson * p)
{
  return p->action_label != 0 ? g_quark_to_string (p->action_label) : NULL;
}

/* Number of class scores (0 when not classified). */
static inline guint
recognizer_person_get_n_scores (const RecognizerPerson * p)
{
  return MIN (p->n_scores, RECOGNIZER_MAX_CLASS_SCORES);
}

/* The probability of class `label`, or `fallback` when the person holds none for it. */
static inline gfloat
recognizer_person_get_class_score (const RecognizerPerson * p, const gchar * label,
    gfloat fallback)
{
  GQuark q = g_quark_try_string (label);
  guint i;
  if (q == 0)
    return fallback;
  for (i = 0; i < recognizer_person_get_n_scores (p); i++)
    if (p->scores[i].label == q)
      return p->scores[i].score;
  return fallback;
}

G_END_DECLS

#endif /* RECOGNIZER_POSE_META_H */
