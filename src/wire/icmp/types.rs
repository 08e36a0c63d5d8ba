//! ICMP type and code numbers as enums (RFC 792, RFC 4443): a named variant for each number
//! lopa tells apart, `Unknown(n)` for every other, so nothing is lost (records keep the raw
//! type and code) and no code path compares bare numbers.

/// An enum over a byte with named values and `Unknown(n)` for the rest; `From` both ways is
/// lossless.
macro_rules! enum_with_unknown {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $( $(#[$vattr:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(value: u8) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// ICMPv4 message types (RFC 792).
    pub enum Icmpv4Type {
        EchoReply = 0,
        DstUnreachable = 3,
        SourceQuench = 4,
        Redirect = 5,
        EchoRequest = 8,
        TimeExceeded = 11,
        ParamProblem = 12,
    }
}

enum_with_unknown! {
    /// ICMPv6 message types (RFC 4443).
    pub enum Icmpv6Type {
        DstUnreachable = 1,
        PktTooBig = 2,
        TimeExceeded = 3,
        ParamProblem = 4,
        EchoRequest = 128,
        EchoReply = 129,
    }
}

enum_with_unknown! {
    /// Codes of an ICMPv4 destination unreachable (RFC 792, RFC 1122, RFC 1812).
    pub enum Icmpv4Unreachable {
        NetUnreachable = 0,
        HostUnreachable = 1,
        ProtoUnreachable = 2,
        PortUnreachable = 3,
        FragRequired = 4,
        SrcRouteFailed = 5,
        DstNetUnknown = 6,
        DstHostUnknown = 7,
        NetProhibited = 9,
        HostProhibited = 10,
        NetUnreachToS = 11,
        HostUnreachToS = 12,
        CommProhibited = 13,
        HostPrecedenceViolation = 14,
        PrecedenceCutoff = 15,
    }
}

enum_with_unknown! {
    /// Codes of an ICMPv6 destination unreachable (RFC 4443).
    pub enum Icmpv6Unreachable {
        NoRoute = 0,
        AdminProhibited = 1,
        BeyondScope = 2,
        AddrUnreachable = 3,
        PortUnreachable = 4,
        FailedPolicy = 5,
        RejectRoute = 6,
    }
}

enum_with_unknown! {
    /// Codes of a time exceeded, the same in both versions.
    pub enum TimeExceeded {
        /// TTL (hop limit) exceeded in transit: a traceroute's answer.
        InTransit = 0,
        FragReassembly = 1,
    }
}

/// An ICMP message type of either version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpType {
    V4(Icmpv4Type),
    V6(Icmpv6Type),
}

impl IcmpType {
    /// An error whose body quotes the offending packet.
    pub fn is_error(self) -> bool {
        use {Icmpv4Type as V4, Icmpv6Type as V6};
        match self {
            IcmpType::V4(t) => matches!(
                t,
                V4::DstUnreachable
                    | V4::SourceQuench
                    | V4::Redirect
                    | V4::TimeExceeded
                    | V4::ParamProblem
            ),
            IcmpType::V6(t) => matches!(
                t,
                V6::DstUnreachable | V6::PktTooBig | V6::TimeExceeded | V6::ParamProblem
            ),
        }
    }

    /// The TTL (hop limit) ran out, or a reassembly timed out.
    pub fn is_time_exceeded(self) -> bool {
        matches!(
            self,
            IcmpType::V4(Icmpv4Type::TimeExceeded) | IcmpType::V6(Icmpv6Type::TimeExceeded)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_unknown_ones_are_kept() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(Icmpv4Type::from(n)), n);
            assert_eq!(u8::from(Icmpv6Type::from(n)), n);
            assert_eq!(u8::from(Icmpv4Unreachable::from(n)), n);
            assert_eq!(u8::from(Icmpv6Unreachable::from(n)), n);
            assert_eq!(u8::from(TimeExceeded::from(n)), n);
        }
        assert_eq!(Icmpv4Type::from(11), Icmpv4Type::TimeExceeded);
        assert_eq!(Icmpv6Type::from(3), Icmpv6Type::TimeExceeded);
        assert_eq!(Icmpv4Unreachable::from(8), Icmpv4Unreachable::Unknown(8));
    }

    #[test]
    fn errors_are_the_types_that_quote_a_packet() {
        let v4: Vec<u8> = (0..=u8::MAX)
            .filter(|&n| IcmpType::V4(n.into()).is_error())
            .collect();
        assert_eq!(v4, [3, 4, 5, 11, 12]);
        let v6: Vec<u8> = (0..=u8::MAX)
            .filter(|&n| IcmpType::V6(n.into()).is_error())
            .collect();
        assert_eq!(v6, [1, 2, 3, 4]);
        assert!(IcmpType::V4(Icmpv4Type::TimeExceeded).is_time_exceeded());
        assert!(!IcmpType::V6(Icmpv6Type::from(11)).is_time_exceeded());
    }
}
