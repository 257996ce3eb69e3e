//! The STUN message header and the zero-copy message view (RFC 8489 §5, §14).

use std::fmt;

use super::attr::{AttributeDecode, AttributeType, RawAttribute};
use super::error::{AttributeTypeList, StunParseError};

/// The fixed value of the magic cookie field (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Size of the STUN message header.
pub const HEADER_LEN: usize = 20;

/// The largest message the 16-bit length field can describe, header included.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 0xFFFF;

/// The class of a STUN message (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// A request, which expects a response.
    Request,
    /// An indication, which expects none.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

impl MessageClass {
    const fn bits(self) -> u16 {
        match self {
            Self::Request => 0b00,
            Self::Indication => 0b01,
            Self::Success => 0b10,
            Self::Error => 0b11,
        }
    }

    /// True for success and error responses.
    #[inline]
    pub const fn is_response(self) -> bool {
        matches!(self, Self::Success | Self::Error)
    }
}

/// A STUN method: a 12-bit number (RFC 8489 §18.2, RFC 8656 §17).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (RFC 8656).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656).
    pub const REFRESH: Method = Method(0x004);
    /// Send (RFC 8656).
    pub const SEND: Method = Method(0x006);
    /// Data (RFC 8656).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656).
    pub const CHANNEL_BIND: Method = Method(0x009);

    /// A method from its number. Returns `None` above 0xFFF, which no header can carry.
    pub const fn new(value: u16) -> Option<Method> {
        if value > 0xFFF {
            None
        } else {
            Some(Method(value))
        }
    }

    /// The method's number.
    #[inline]
    pub const fn value(self) -> u16 {
        self.0
    }

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::BINDING => "Binding",
            Self::ALLOCATE => "Allocate",
            Self::REFRESH => "Refresh",
            Self::SEND => "Send",
            Self::DATA => "Data",
            Self::CREATE_PERMISSION => "CreatePermission",
            Self::CHANNEL_BIND => "ChannelBind",
            _ => return None,
        })
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Method({:#05x})", self.0),
        }
    }
}

/// A message type: class and method, as packed in the first 16 bits of the header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The class.
    pub class: MessageClass,
    /// The method.
    pub method: Method,
}

impl MessageType {
    /// Binding request.
    pub const BINDING_REQUEST: MessageType =
        MessageType::new(MessageClass::Request, Method::BINDING);
    /// Binding success response.
    pub const BINDING_SUCCESS: MessageType =
        MessageType::new(MessageClass::Success, Method::BINDING);
    /// Binding error response.
    pub const BINDING_ERROR: MessageType = MessageType::new(MessageClass::Error, Method::BINDING);
    /// Binding indication (keepalive).
    pub const BINDING_INDICATION: MessageType =
        MessageType::new(MessageClass::Indication, Method::BINDING);

    /// A message type from its parts.
    pub const fn new(class: MessageClass, method: Method) -> MessageType {
        MessageType { class, method }
    }

    /// The 14-bit wire form: method bits M0-M11 interleaved with class bits C0, C1
    /// (RFC 8489 §5, figure 3).
    #[inline]
    pub const fn to_u16(self) -> u16 {
        let m = self.method.0;
        let c = self.class.bits();
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }

    /// Decodes the wire form. The two most significant bits must be zero.
    #[inline]
    pub const fn from_u16(value: u16) -> Option<MessageType> {
        if value & 0xC000 != 0 {
            return None;
        }
        let method = (value & 0x000F) | ((value >> 1) & 0x0070) | ((value >> 2) & 0x0F80);
        let class = match ((value >> 4) & 1) | ((value >> 7) & 2) {
            0 => MessageClass::Request,
            1 => MessageClass::Indication,
            2 => MessageClass::Success,
            _ => MessageClass::Error,
        };
        Some(MessageType {
            class,
            method: Method(method),
        })
    }

    /// The type of a success response to a request of this type's method.
    #[inline]
    pub const fn success(self) -> MessageType {
        MessageType::new(MessageClass::Success, self.method)
    }

    /// The type of an error response to a request of this type's method.
    #[inline]
    pub const fn error(self) -> MessageType {
        MessageType::new(MessageClass::Error, self.method)
    }
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?}", self.method, self.class)
    }
}

/// The 96-bit transaction id of a STUN message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// The id's bytes.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

impl From<[u8; 12]> for TransactionId {
    fn from(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransactionId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The fixed 20-byte header of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Class and method.
    pub message_type: MessageType,
    /// The length field: bytes of attributes after the header.
    pub length: u16,
    /// The transaction id.
    pub transaction_id: TransactionId,
}

impl MessageHeader {
    /// Reads the header at the start of `data`, checking the leading bits and the magic
    /// cookie but nothing after the header.
    ///
    /// This is what a server needs to answer a request whose body failed to parse (for
    /// instance with 420 after [`StunParseError::UnknownComprehensionRequired`]).
    #[inline]
    pub fn parse(data: &[u8]) -> Result<MessageHeader, StunParseError> {
        let Some(header) = data.first_chunk::<HEADER_LEN>() else {
            return Err(StunParseError::TooShort { len: data.len() });
        };
        let raw_type = u16::from_be_bytes([header[0], header[1]]);
        // RFC 8489 §5: the most significant 2 bits of every STUN message MUST be zeroes.
        let Some(message_type) = MessageType::from_u16(raw_type) else {
            return Err(StunParseError::NotStun);
        };
        let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if cookie != MAGIC_COOKIE {
            return Err(StunParseError::BadMagicCookie { found: cookie });
        }
        let mut txid = [0u8; 12];
        txid.copy_from_slice(&header[8..20]);
        Ok(MessageHeader {
            message_type,
            length: u16::from_be_bytes([header[2], header[3]]),
            transaction_id: TransactionId(txid),
        })
    }
}

/// Quick test for "could this be a STUN message?", for demultiplexing STUN from other
/// protocols on one socket (RFC 7983): at least a header, leading bits zero, magic cookie.
pub fn looks_like_stun(data: &[u8]) -> bool {
    data.len() >= HEADER_LEN
        && data[0] & 0xC0 == 0
        && data[4..8] == MAGIC_COOKIE.to_be_bytes()
        && data[2..4] != [0xFF, 0xFF]
}

/// A validated STUN message, borrowed from the bytes it was parsed from.
///
/// [`Message::parse`] checks the header and walks the attributes once; after that,
/// attribute look-ups and integrity checks need no further validation of the framing
/// and never allocate.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    data: &'a [u8],
    header: MessageHeader,
    /// Offsets (from the start of the message) of the MESSAGE-INTEGRITY,
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT attribute headers, when present.
    integrity: Option<u32>,
    integrity_sha256: Option<u32>,
    fingerprint: Option<u32>,
    /// The first attributes in wire order, so that look-ups need not walk the message:
    /// their types and their offsets divided by 4 (offsets are multiples of 4).
    index_types: [u16; INDEX_LEN],
    index_offsets: [u16; INDEX_LEN],
    index_len: u8,
    /// True when every attribute is in the index.
    index_complete: bool,
}

/// How many attributes [`Message`] indexes; messages with more are searched by walking.
const INDEX_LEN: usize = 8;

impl<'a> Message<'a> {
    /// Parses and validates one whole message. `data` must hold exactly one message, as a
    /// UDP datagram or a frame cut by [`super::StreamFramer`] does.
    ///
    /// Checks, each with its own error: header size, leading bits, magic cookie, length
    /// alignment and bounds, attribute bounds, what may follow
    /// MESSAGE-INTEGRITY(-SHA256), FINGERPRINT last, and unknown comprehension-required
    /// attributes. It does not verify integrity or fingerprint values: see
    /// [`Message::check_fingerprint`] and [`Message::check_integrity`].
    #[inline]
    pub fn parse(data: &'a [u8]) -> Result<Message<'a>, StunParseError> {
        let header = MessageHeader::parse(data)?;
        // RFC 8489 §5: the message length MUST contain the size of the message in bytes,
        // not including the 20-byte header; attributes are padded so it is a multiple of 4.
        if header.length % 4 != 0 {
            return Err(StunParseError::UnalignedLength {
                length: header.length,
            });
        }
        let expected = HEADER_LEN + usize::from(header.length);
        if expected > data.len() {
            return Err(StunParseError::LengthOverrun {
                expected,
                available: data.len(),
            });
        }
        if expected < data.len() {
            return Err(StunParseError::TrailingBytes {
                expected,
                available: data.len(),
            });
        }
        let mut msg = Message {
            data,
            header,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
            index_types: [0; INDEX_LEN],
            index_offsets: [0; INDEX_LEN],
            index_len: 0,
            index_complete: true,
        };
        msg.walk_attributes()?;
        Ok(msg)
    }

    /// Walks every attribute once, validating the framing, recording where the integrity
    /// and fingerprint attributes are, and indexing the first attributes.
    #[inline]
    fn walk_attributes(&mut self) -> Result<(), StunParseError> {
        let data = self.data;
        let end = data.len();
        let mut unknown = AttributeTypeList::new();
        let mut offset = HEADER_LEN;
        while offset < end {
            // `end - offset` is a positive multiple of 4 (the length is aligned), so the
            // 4-byte attribute header is always there.
            let ty = AttributeType::new(u16::from_be_bytes([data[offset], data[offset + 1]]));
            let len = usize::from(u16::from_be_bytes([data[offset + 2], data[offset + 3]]));
            // Both ends are multiples of 4, so the value fits if and only if its padding
            // does. RFC 8489 §14: the padding's contents MUST be ignored by the receiver.
            let next = offset + 4 + ((len + 3) & !3);
            if next > end {
                return Err(StunParseError::AttributeOverrun { attr: ty, offset });
            }
            if self.fingerprint.is_some() {
                // RFC 8489 §14.7: FINGERPRINT MUST be the last attribute.
                return Err(StunParseError::FingerprintNotLast);
            }
            if self.integrity.is_some() || self.integrity_sha256.is_some() {
                self.after_integrity(ty, offset)?;
            } else {
                match ty {
                    AttributeType::MESSAGE_INTEGRITY => self.integrity = Some(offset as u32),
                    AttributeType::MESSAGE_INTEGRITY_SHA256 => {
                        self.integrity_sha256 = Some(offset as u32)
                    }
                    AttributeType::FINGERPRINT => self.fingerprint = Some(offset as u32),
                    _ if ty.is_comprehension_required() && !ty.is_known() => unknown.push(ty),
                    _ => {}
                }
            }
            let n = usize::from(self.index_len);
            if n < INDEX_LEN {
                self.index_types[n] = ty.value();
                self.index_offsets[n] = (offset / 4) as u16;
                self.index_len += 1;
            } else {
                self.index_complete = false;
            }
            offset = next;
        }
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(StunParseError::UnknownComprehensionRequired(unknown))
        }
    }

    /// Checks an attribute that follows MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    fn after_integrity(&mut self, ty: AttributeType, offset: usize) -> Result<(), StunParseError> {
        let after = if self.integrity_sha256.is_some() {
            AttributeType::MESSAGE_INTEGRITY_SHA256
        } else {
            AttributeType::MESSAGE_INTEGRITY
        };
        match ty {
            // RFC 8489 §14.5, §14.7: FINGERPRINT may follow either.
            AttributeType::FINGERPRINT => self.fingerprint = Some(offset as u32),
            // RFC 8489 §14.5: MESSAGE-INTEGRITY-SHA256 may follow MESSAGE-INTEGRITY.
            AttributeType::MESSAGE_INTEGRITY_SHA256 if self.integrity_sha256.is_none() => {
                self.integrity_sha256 = Some(offset as u32)
            }
            // RFC 8489 §14.5, §14.6: nothing else may.
            _ => return Err(StunParseError::AttributeAfterIntegrity { attr: ty, after }),
        }
        Ok(())
    }

    /// The header.
    #[inline]
    pub fn header(&self) -> &MessageHeader {
        &self.header
    }

    /// Class and method.
    #[inline]
    pub fn message_type(&self) -> MessageType {
        self.header.message_type
    }

    /// The class.
    #[inline]
    pub fn class(&self) -> MessageClass {
        self.header.message_type.class
    }

    /// The method.
    #[inline]
    pub fn method(&self) -> Method {
        self.header.message_type.method
    }

    /// The transaction id.
    #[inline]
    pub fn transaction_id(&self) -> TransactionId {
        self.header.transaction_id
    }

    /// The whole message, header included.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterates over the attributes in wire order, including MESSAGE-INTEGRITY,
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.
    #[inline]
    pub fn attributes(&self) -> AttributeIter<'a> {
        AttributeIter {
            data: self.data,
            offset: HEADER_LEN,
        }
    }

    /// The first attribute of type `ty`, undecoded. Per RFC 8489 §14 only the first
    /// occurrence of an attribute is processed.
    #[inline]
    pub fn raw_attribute(&self, ty: AttributeType) -> Option<RawAttribute<'a>> {
        let n = usize::from(self.index_len);
        let found = self.index_types[..n].iter().position(|&t| t == ty.value());
        match found {
            Some(i) => trusted_attribute(self.data, usize::from(self.index_offsets[i]) * 4),
            None if self.index_complete => None,
            None => self.attributes().find(|a| a.attr_type() == ty),
        }
    }

    /// True if the message carries an attribute of type `ty`.
    #[inline]
    pub fn has_attribute(&self, ty: AttributeType) -> bool {
        self.raw_attribute(ty).is_some()
    }

    /// Decodes the first attribute of type `A`: `Ok(None)` when absent, an error when
    /// present but malformed.
    #[inline]
    pub fn attribute<A: AttributeDecode<'a>>(&self) -> Result<Option<A>, StunParseError> {
        match self.raw_attribute(A::TYPE) {
            Some(raw) => A::decode(raw.value(), &self.header.transaction_id).map(Some),
            None => Ok(None),
        }
    }

    #[inline]
    pub(crate) fn integrity_offset(&self) -> Option<usize> {
        self.integrity.map(|o| o as usize)
    }

    #[inline]
    pub(crate) fn integrity_sha256_offset(&self) -> Option<usize> {
        self.integrity_sha256.map(|o| o as usize)
    }

    #[inline]
    pub(crate) fn fingerprint_offset(&self) -> Option<usize> {
        self.fingerprint.map(|o| o as usize)
    }

    /// True if the message has a FINGERPRINT attribute.
    #[inline]
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// True if the message has MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    #[inline]
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some() || self.integrity_sha256.is_some()
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("type", &self.header.message_type)
            .field("transaction_id", &self.header.transaction_id)
            .field("len", &self.data.len())
            .field("attributes", &DebugAttrs(*self))
            .finish()
    }
}

struct DebugAttrs<'a>(Message<'a>);

impl fmt::Debug for DebugAttrs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.attributes().map(|a| a.attr_type()))
            .finish()
    }
}

/// Reads the attribute at `offset` of a message that `Message::parse` validated, without
/// repeating the padding check. Returns `None` instead of panicking if the bounds are off.
#[inline]
fn trusted_attribute(data: &[u8], offset: usize) -> Option<RawAttribute<'_>> {
    let head = data.get(offset..offset + 4)?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let value = data.get(offset + 4..offset + 4 + len)?;
    Some(RawAttribute::new(
        AttributeType::new(u16::from_be_bytes([head[0], head[1]])),
        value,
    ))
}

/// Iterator over the attributes of a parsed [`Message`].
#[derive(Debug, Clone)]
pub struct AttributeIter<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for AttributeIter<'a> {
    type Item = RawAttribute<'a>;

    #[inline]
    fn next(&mut self) -> Option<RawAttribute<'a>> {
        if self.offset >= self.data.len() {
            return None;
        }
        // The message was validated by `Message::parse`, so this cannot fail; stop quietly
        // rather than panic if it ever did.
        let raw = trusted_attribute(self.data, self.offset)?;
        self.offset += raw.wire_len();
        Some(raw)
    }
}
