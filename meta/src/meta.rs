//! Registration and typed access of the `RecognizerPoseMeta` GstMeta.

use std::{fmt, ptr, sync::OnceLock};

use glib::translate::{IntoGlib, from_glib};
use gst::prelude::*;

use crate::{
    Person,
    ffi::{self, RecognizerPoseMeta},
    person::bitflags_lite,
};

bitflags_lite! {
    /// Per-frame flags.
    PoseMetaFlags {
        /// The pose model ran on this frame (otherwise the persons were predicted or carried over).
        INFERRED = 1,
    }
}

/// Typed view of the meta attached to a buffer.
#[repr(transparent)]
pub struct PoseMeta(RecognizerPoseMeta);

unsafe impl Send for PoseMeta {}
unsafe impl Sync for PoseMeta {}

impl PoseMeta {
    /// Attaches a meta holding `persons` to `buffer`, replacing none: call [`Self::set_persons`]
    /// on an existing meta to change it (see [`Self::add_or_replace`]).
    pub fn add<'a>(
        buffer: &'a mut gst::BufferRef,
        persons: &[Person],
        flags: PoseMetaFlags,
    ) -> gst::MetaRefMut<'a, Self, gst::meta::Standalone> {
        unsafe {
            let meta =
                gst::ffi::gst_buffer_add_meta(buffer.as_mut_ptr(), meta_info(), ptr::null_mut())
                    as *mut RecognizerPoseMeta;
            (*meta).flags = flags.0;
            set_persons_raw(&mut *meta, persons);
            Self::from_mut_ptr(buffer, meta as *mut _)
        }
    }

    /// Sets the persons of the buffer's meta, adding the meta if there is none.
    pub fn add_or_replace(buffer: &mut gst::BufferRef, persons: &[Person], flags: PoseMetaFlags) {
        match buffer.meta_mut::<Self>() {
            Some(mut meta) => {
                meta.set_persons(persons);
                meta.set_frame_flags(flags);
            }
            None => {
                Self::add(buffer, persons, flags);
            }
        }
    }

    /// The meta was written with this crate's layout (version and person size); a meta from an
    /// incompatible writer reads as holding no persons.
    pub fn is_compatible(&self) -> bool {
        self.0.version == ffi::VERSION
            && self.0.person_size as usize == std::mem::size_of::<Person>()
    }

    /// The layout version of the writer ([`ffi::VERSION`] for this crate).
    pub fn version(&self) -> u32 {
        self.0.version
    }

    pub fn persons(&self) -> &[Person] {
        if self.0.persons.is_null() || !self.is_compatible() {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(self.0.persons, self.0.n_persons as usize) }
    }

    pub fn persons_mut(&mut self) -> &mut [Person] {
        if self.0.persons.is_null() || !self.is_compatible() {
            return &mut [];
        }
        unsafe { std::slice::from_raw_parts_mut(self.0.persons, self.0.n_persons as usize) }
    }

    pub fn set_persons(&mut self, persons: &[Person]) {
        unsafe { set_persons_raw(&mut self.0, persons) }
    }

    pub fn frame_flags(&self) -> PoseMetaFlags {
        PoseMetaFlags(self.0.flags)
    }

    pub fn set_frame_flags(&mut self, flags: PoseMetaFlags) {
        self.0.flags = flags.0;
    }
}

impl fmt::Debug for PoseMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoseMeta")
            .field("frame_flags", &self.frame_flags())
            .field("persons", &self.persons())
            .finish()
    }
}

unsafe impl gst::meta::MetaAPI for PoseMeta {
    type GstType = RecognizerPoseMeta;

    fn meta_api() -> glib::Type {
        api_type()
    }
}

/// Replaces the persons array with a `g_malloc`'d copy of `persons`.
unsafe fn set_persons_raw(meta: &mut RecognizerPoseMeta, persons: &[Person]) {
    unsafe {
        glib::ffi::g_free(meta.persons as *mut _);
        meta.persons = ptr::null_mut();
        meta.n_persons = 0;
        // The persons are now of this crate's layout, whoever wrote the meta before.
        meta.version = ffi::VERSION;
        meta.person_size = std::mem::size_of::<Person>() as u32;
        if !persons.is_empty() {
            let bytes = std::mem::size_of_val(persons);
            let dst = glib::ffi::g_malloc(bytes) as *mut Person;
            ptr::copy_nonoverlapping(persons.as_ptr(), dst, persons.len());
            meta.persons = dst;
            meta.n_persons = persons.len() as u32;
        }
    }
}

/// Registers the meta API and implementation (idempotent; also across several copies of this
/// crate in one process, which find the first registration by name, and with C code that called
/// the header's `recognizer_pose_meta_api_get_type()` first, which registers the API type the
/// same way). Called implicitly.
pub fn register() {
    let _ = api_type();
    let _ = meta_info();
}

fn api_type() -> glib::Type {
    static TYPE: OnceLock<glib::Type> = OnceLock::new();
    *TYPE.get_or_init(|| {
        let name = glib::GString::from(ffi::API_NAME);
        if let Some(existing) = glib::Type::from_name(ffi::API_NAME) {
            return existing;
        }
        // "video" + "size": elements that change the frame size (videoscale) call the scale
        // transform; elements that only change colours (videoconvert) keep the meta as is.
        // `ffi::API_TAGS`; the C header registers the same tags.
        let tags = [c"video".as_ptr(), c"size".as_ptr(), ptr::null()];
        let mut t: glib::Type = unsafe {
            from_glib(gst::ffi::gst_meta_api_type_register(
                name.as_ptr(),
                tags.as_ptr() as *mut *const _,
            ))
        };
        if t == glib::Type::INVALID {
            // Registered by another thread (C or another copy of this crate) meanwhile.
            t = glib::Type::from_name(ffi::API_NAME).unwrap_or(glib::Type::INVALID);
        }
        assert_ne!(
            t,
            glib::Type::INVALID,
            "registering {} failed",
            ffi::API_NAME
        );
        t
    })
}

struct MetaInfo(ptr::NonNull<gst::ffi::GstMetaInfo>);
unsafe impl Send for MetaInfo {}
unsafe impl Sync for MetaInfo {}

fn meta_info() -> *const gst::ffi::GstMetaInfo {
    static INFO: OnceLock<MetaInfo> = OnceLock::new();
    INFO.get_or_init(|| unsafe {
        let name = glib::GString::from(ffi::IMPL_NAME);
        let existing = gst::ffi::gst_meta_get_info(name.as_ptr());
        let info = if !existing.is_null() {
            existing
        } else {
            gst::ffi::gst_meta_register(
                api_type().into_glib(),
                name.as_ptr(),
                std::mem::size_of::<RecognizerPoseMeta>(),
                Some(meta_init),
                Some(meta_free),
                Some(meta_transform),
            )
        };
        MetaInfo(ptr::NonNull::new(info as *mut _).expect("registering RecognizerPoseMeta failed"))
    })
    .0
    .as_ptr()
}

unsafe extern "C" fn meta_init(
    meta: *mut gst::ffi::GstMeta,
    _params: glib::ffi::gpointer,
    _buffer: *mut gst::ffi::GstBuffer,
) -> glib::ffi::gboolean {
    unsafe {
        let meta = meta as *mut RecognizerPoseMeta;
        (*meta).version = ffi::VERSION;
        (*meta).person_size = std::mem::size_of::<Person>() as u32;
        (*meta).flags = 0;
        (*meta).n_persons = 0;
        (*meta).persons = ptr::null_mut();
    }
    true.into_glib()
}

unsafe extern "C" fn meta_free(meta: *mut gst::ffi::GstMeta, _buffer: *mut gst::ffi::GstBuffer) {
    unsafe {
        let meta = &mut *(meta as *mut RecognizerPoseMeta);
        glib::ffi::g_free(meta.persons as *mut _);
        meta.persons = ptr::null_mut();
        meta.n_persons = 0;
    }
}

unsafe extern "C" fn meta_transform(
    dest: *mut gst::ffi::GstBuffer,
    meta: *mut gst::ffi::GstMeta,
    _buffer: *mut gst::ffi::GstBuffer,
    type_: glib::ffi::GQuark,
    data: glib::ffi::gpointer,
) -> glib::ffi::gboolean {
    unsafe {
        let src = &*(meta as *const PoseMeta);
        let persons = src.persons();
        let flags = src.frame_flags();
        use gst::meta::MetaTransform;
        let copy = gst::meta::MetaTransformCopy::quark().into_glib();
        let scale = gst_video::video_meta::VideoMetaTransformScale::quark().into_glib();
        let dest = gst::BufferRef::from_mut_ptr(dest);
        if type_ == copy {
            // A region copy (e.g. a sub-buffer) keeps the coordinates: they refer to the frame.
            PoseMeta::add_or_replace(dest, persons, flags);
            true.into_glib()
        } else if type_ == scale {
            let t = &*(data as *const gst_video::ffi::GstVideoMetaTransform);
            let (iw, ih) = ((*t.in_info).width, (*t.in_info).height);
            let (ow, oh) = ((*t.out_info).width, (*t.out_info).height);
            if iw <= 0 || ih <= 0 {
                return false.into_glib();
            }
            let (sx, sy) = (ow as f32 / iw as f32, oh as f32 / ih as f32);
            let scaled: Vec<Person> = persons
                .iter()
                .map(|p| {
                    let mut p = *p;
                    p.scale(sx, sy);
                    p
                })
                .collect();
            PoseMeta::add_or_replace(dest, &scaled, flags);
            true.into_glib()
        } else {
            // Unknown transforms (crops, rotations) would misplace coordinates: drop the meta.
            false.into_glib()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keypoint, NUM_KEYPOINTS};

    fn person(x: f32) -> Person {
        Person::new(
            [x, x, x + 10.0, x + 20.0],
            0.9,
            [Keypoint {
                x,
                y: x,
                score: 0.5,
            }; NUM_KEYPOINTS],
        )
    }

    #[test]
    fn add_read_replace_and_copy() {
        gst::init().unwrap();
        register();
        register();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            PoseMeta::add(b, &[person(1.0), person(2.0)], PoseMetaFlags::INFERRED);
        }
        let meta = buffer.meta::<PoseMeta>().unwrap();
        assert_eq!(meta.persons().len(), 2);
        assert_eq!(meta.version(), ffi::VERSION);
        assert!(meta.is_compatible());
        assert!(meta.frame_flags().contains(PoseMetaFlags::INFERRED));
        // A deep copy of the buffer copies the meta through the transform.
        let copy = buffer.copy_deep().unwrap();
        assert_eq!(
            copy.meta::<PoseMeta>().unwrap().persons(),
            &[person(1.0), person(2.0)]
        );
        let b = buffer.get_mut().unwrap();
        PoseMeta::add_or_replace(b, &[], PoseMetaFlags::empty());
        assert_eq!(b.iter_meta::<PoseMeta>().count(), 1);
        assert!(b.meta::<PoseMeta>().unwrap().persons().is_empty());
    }

    #[test]
    fn api_type_is_found_by_name() {
        gst::init().unwrap();
        register();
        assert_eq!(glib::Type::from_name(ffi::API_NAME), Some(api_type()));
        assert!(
            unsafe {
                gst::ffi::gst_meta_api_type_has_tag(
                    api_type().into_glib(),
                    glib::Quark::from_str("size").into_glib(),
                )
            } != glib::ffi::GFALSE
        );
    }
}
