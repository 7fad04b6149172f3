//! The column names that the common contact exports write — Google Contacts (both formats),
//! Outlook, HubSpot, Mailchimp and Salesforce (reports, and Data Loader's API names) — so that
//! their files import without a hand-written mapping. docs/api.md ("Columns of known exports")
//! lists them with the source of each. Only names that the field names themselves (case,
//! spaces, `_` and `-` ignored) would not catch are here, and those that must be ranked
//! against another column of the same export.
//!
//! An export often has several columns for one field (Outlook: `Mobile Phone`, `Home Phone`,
//! `Business Phone`): each row takes the first of them, best first, that it has a value in. A
//! mobile number comes before a landline (this is a messaging platform), primary before
//! secondary. Addresses come in blocks (Outlook's Home, Business and Other; Google's
//! `Address 1` and `Address 2`): a row takes its street, city, state and zip all from the first
//! block it has any of, so that no contact gets one address's street and another's city.

/// Columns of fields other than the address, best first within each field; a field's own
/// name, where listed, ranks where it stands, else before all of these.
pub const RANKED: &[(&str, &str)] = &[
    ("externalId", "Record ID"),  // HubSpot
    ("externalId", "Contact ID"), // HubSpot (older), Salesforce reports
    ("externalId", "Lead ID"),    // Salesforce lead reports
    // Not Data Loader's `Id`: here `id` is the contact's own id (as our exports write it).
    ("phone", "Mobile Phone"),          // Outlook, Salesforce (MobilePhone)
    ("phone", "Mobile Phone Number"),   // HubSpot
    ("phone", "Mobile"),                // Salesforce reports
    ("phone", "WhatsApp Phone Number"), // HubSpot
    ("phone", "Phone 1 - Value"),       // Google
    ("phone", "Phone 2 - Value"),
    ("phone", "Phone 3 - Value"),
    ("phone", "Primary Phone"), // Outlook
    ("phone", "Phone Number"),  // HubSpot, Mailchimp
    ("phone", "Phone"),         // Salesforce
    ("phone", "Home Phone"),    // Outlook, Salesforce (HomePhone)
    ("phone", "Home Phone 2"),
    ("phone", "Business Phone"), // Outlook, Salesforce's label of Phone
    ("phone", "Business Phone 2"),
    ("phone", "Other Phone"),      // Outlook, Salesforce (OtherPhone)
    ("email", "E-mail 1 - Value"), // Google
    ("email", "E-mail Address"),   // Outlook
    ("email", "Email Address"),    // Mailchimp
    ("email", "Email"),            // HubSpot, Salesforce
    ("email", "E-mail 2 - Value"),
    ("email", "E-mail 2 Address"),
    ("email", "E-mail 3 - Value"),
    ("email", "E-mail 3 Address"),
    ("email", "Work email"),                  // HubSpot
    ("firstName", "Given Name"),              // Google (older format)
    ("lastName", "Family Name"),              // Google (older format)
    ("fullName", "Name"),                     // Google (older format), Salesforce
    ("occupation", "Organization Title"),     // Google
    ("occupation", "Organization 1 - Title"), // Google (older format)
    ("occupation", "Job Title"),              // Outlook, HubSpot
    ("occupation", "Title"), // Salesforce (Outlook's Title is Mr./Dr.: it has Job Title too)
    ("occupation", "Occupation"), // Google (older format)
    ("birthday", "Birthdate"), // Salesforce
    ("birthday", "Date of birth"), // HubSpot
    ("tags", "TAGS"),        // Mailchimp: "VIP","Blog"
    ("tags", "Categories"),  // Outlook: joined by the list separator
];

/// Address blocks, best first: one block's columns are one address, `(field, column)`. The
/// first is the address of files with one: the field names themselves, and HubSpot's and
/// Salesforce leads' columns.
pub const ADDRESS_BLOCKS: &[&[(&str, &str)]] = &[
    &[
        ("address", "Address"),
        ("city", "City"),
        ("state", "State"),
        ("zip", "Zip"),
        ("zip", "Postcode"),
        ("address", "Street Address"), // HubSpot
        ("state", "State/Region"),
        ("zip", "Postal Code"),
        ("address", "Street"), // Salesforce leads
        ("state", "State/Province"),
        ("zip", "Zip/Postal Code"),
    ],
    &[
        ("address", "Address 1 - Street"), // Google
        ("city", "Address 1 - City"),
        ("state", "Address 1 - Region"),
        ("zip", "Address 1 - Postal Code"),
    ],
    &[
        ("address", "Address 2 - Street"),
        ("city", "Address 2 - City"),
        ("state", "Address 2 - Region"),
        ("zip", "Address 2 - Postal Code"),
    ],
    &[
        ("address", "Home Street"), // Outlook
        ("city", "Home City"),
        ("state", "Home State"),
        ("zip", "Home Postal Code"),
    ],
    &[
        ("address", "Mailing Street"), // Salesforce (MailingStreet, …)
        ("city", "Mailing City"),
        ("state", "Mailing State/Province"),
        ("state", "Mailing State"),
        ("zip", "Mailing Zip/Postal Code"),
        ("zip", "Mailing Postal Code"),
    ],
    &[
        ("address", "Business Street"), // Outlook
        ("city", "Business City"),
        ("state", "Business State"),
        ("zip", "Business Postal Code"),
    ],
    &[
        ("address", "Other Street"), // Outlook, Salesforce
        ("city", "Other City"),
        ("state", "Other State"),
        ("state", "Other State/Province"),
        ("zip", "Other Postal Code"),
        ("zip", "Other Zip/Postal Code"),
    ],
    // Google's whole address in one cell: only when a file has no street column.
    &[("address", "Address 1 - Formatted")],
];

/// `(column, unless)`: the column maps only in a file without the other. Outlook's `Title` is
/// Mr./Dr. (its job is `Job Title`); Salesforce's `Title` is the job.
pub const SHADOWED: &[(&str, &str)] = &[("Title", "Job Title")];

/// Google writes several values of one kind in one cell, joined by this: the first is kept.
pub const GOOGLE_SEPARATOR: &str = " ::: ";

/// The address fields, which come in blocks.
pub const ADDRESS_FIELDS: [&str; 4] = ["address", "city", "state", "zip"];
